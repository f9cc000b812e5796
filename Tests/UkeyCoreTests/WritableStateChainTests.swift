import Testing
import UkeyCore

/// A VM's writable state in the chain: judged against the state sealed at its last
/// stop, `changed-since-stop` otherwise, which its release clears (the seal goes on refusing).
@Suite("Boot chain rules for writable state")
struct WritableStateChainTests {
    /// root -> vmm -> base -> office (its overlay writable) -> kernel
    static func tree() throws -> ExpectedSet {
        try ExpectedSet(entities: [
            Fixtures.entity("vmm", parent: "root"),
            Fixtures.entity("base", parent: "vmm", register: 10),
            Entity(
                name: "office",
                parent: "base",
                kind: .userVM,
                register: 11,
                components: [
                    Component(name: "kernel", expected: Fixtures.digest("office/kernel")),
                    Component(name: "overlay", expected: Fixtures.digest("office/overlay"), writable: true),
                ]
            ),
            Fixtures.entity("kernel", parent: "office", register: 13),
        ])
    }

    static func started() throws -> BootChain {
        var chain = BootChain(expected: try tree(), bootID: "b1")
        try Fixtures.measureGood(&chain, "vmm")
        try Fixtures.measureGood(&chain, "base")
        _ = try chain.measure(entity: "office", component: "kernel", digest: Fixtures.digest("office/kernel"))
        return chain
    }

    @Test("a writable component matches its seal, not the policy's first state; without a seal, the first state")
    func judgedAgainstSeal() throws {
        var chain = try Self.started()
        let day2 = Fixtures.digest("day 2")
        let sealed = try chain.measure(entity: "office", component: "overlay", digest: day2, sealed: day2)
        #expect(sealed.state == .trusted && sealed.match)
        var fresh = try Self.started()
        let first = try fresh.measure(
            entity: "office",
            component: "overlay",
            digest: Fixtures.digest("office/overlay"),
            sealed: nil
        )
        #expect(first.state == .trusted)
        // A seal given for a component that is not writable changes nothing.
        var other = try Self.started()
        let kernel = try other.measure(
            entity: "office",
            component: "kernel",
            digest: Fixtures.digest("evil"),
            sealed: Fixtures.digest("evil")
        )
        #expect(kernel.state == .untrusted && kernel.reason == .digestMismatch)
    }

    @Test(
        "another state is changed-since-stop (even the policy's first state, once sealed otherwise); it taints what the VM loads; a release clears both, unlike digest-mismatch"
    )
    func changedSinceStopReleases() throws {
        var chain = try Self.started()
        let refused = try chain.measure(
            entity: "office",
            component: "overlay",
            digest: Fixtures.digest("office/overlay"),
            sealed: Fixtures.digest("day 2")
        )
        #expect(refused.state == .untrusted && refused.reason == .changedSinceStop && !refused.mayLoad(in: .enforce))
        #expect(chain.status(of: "kernel")?.reason == .ancestorUntrusted)
        #expect(try chain.release(entity: "office") == .released(["office", "kernel"]))
        #expect(
            chain.state(of: "office") == .pending && chain.state(of: "kernel") == .pending
                && chain.state(of: "base") == .trusted
        )
        // A digest-mismatch is for the boot, released or not.
        _ = try chain.measure(entity: "office", component: "kernel", digest: Fixtures.digest("evil"))
        #expect(try chain.release(entity: "office") == .stillUntrusted(.digestMismatch))
    }

    @Test("a tampered component found after changed-since-stop replaces it: the release then clears nothing")
    func laterCauseWins() throws {
        var chain = try Self.started()
        var fresh = BootChain(expected: try Self.tree(), bootID: "b1")
        try Fixtures.measureGood(&fresh, "vmm")
        try Fixtures.measureGood(&fresh, "base")
        _ = try fresh.measure(entity: "office", component: "overlay", digest: Fixtures.digest("changed"), sealed: nil)
        let kernel = try fresh.measure(entity: "office", component: "kernel", digest: Fixtures.digest("evil"))
        #expect(kernel.reason == .digestMismatch && kernel.state == .untrusted)
        #expect(try fresh.release(entity: "office") == .stillUntrusted(.digestMismatch))
        // The same for a chain broken above it afterwards.
        _ = try chain.measure(entity: "office", component: "overlay", digest: Fixtures.digest("changed"), sealed: nil)
        _ = try chain.measure(entity: "base", component: "image", digest: Fixtures.digest("evil base"))
        _ = try chain.measure(entity: "office", component: "kernel", digest: Fixtures.digest("office/kernel"))
        #expect(chain.status(of: "office")?.reason == .parentNotTrusted)
        #expect(try chain.release(entity: "office") == .stillUntrusted(.parentNotTrusted))
    }

    @Test("a descendant tainted on its own account stays so when its VM is released from changed-since-stop")
    func ownTaintStays() throws {
        var chain = try Self.started()
        _ = try chain.measure(entity: "office", component: "overlay", digest: Fixtures.digest("office/overlay"))
        _ = try chain.measure(entity: "kernel", component: "image", digest: Fixtures.digest("evil kernel"))
        #expect(chain.status(of: "kernel")?.reason == .digestMismatch)
        _ = try chain.release(entity: "office")
        var again = chain
        _ = try again.measure(entity: "office", component: "overlay", digest: Fixtures.digest("changed"), sealed: nil)
        #expect(again.status(of: "office")?.reason == .changedSinceStop)
        #expect(try again.release(entity: "office") == .released(["office"]))
        #expect(again.status(of: "kernel")?.reason == .digestMismatch)
    }
}
