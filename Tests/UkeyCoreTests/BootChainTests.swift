import Testing
import UkeyCore

@Suite("Boot chain rules (paper section 3.1, architecture.md section 1)")
struct BootChainTests {
    @Test("trusted only when every component matched, each while the parent was trusted")
    func trustedNeedsEveryComponent() throws {
        var chain = BootChain(expected: try Fixtures.paperTree(), bootID: "b1")
        let first = try chain.measure(entity: "vmm", component: "kernel", digest: Fixtures.digest("vmm/kernel"))
        #expect(first.state == .pending && first.match && first.parentTrusted && first.reason == nil)
        let second = try chain.measure(entity: "vmm", component: "initrd", digest: Fixtures.digest("vmm/initrd"))
        #expect(second.state == .pending)
        let third = try chain.measure(entity: "vmm", component: "qemu", digest: Fixtures.digest("vmm/qemu"))
        #expect(third.state == .trusted)
        #expect(third.effects.last == .becameTrusted(entity: "vmm"))
        // Measuring the same component again with the right digest keeps it trusted.
        let again = try chain.measure(entity: "vmm", component: "kernel", digest: Fixtures.digest("vmm/kernel"))
        #expect(again.state == .trusted && again.effects.count == 1)
    }

    @Test("root is trusted unconditionally and cannot be measured")
    func rootIsNotMeasurable() throws {
        var chain = BootChain(expected: try Fixtures.paperTree(), bootID: "b1")
        #expect(chain.state(of: "root") == .trusted)
        #expect(throws: UkeyCoreError(.rootNotMeasurable, "")) {
            try chain.measure(entity: "root", component: "image", digest: Fixtures.digest("x"))
        }
        #expect(throws: UkeyCoreError(.invalidEntityTree, "")) {
            try ExpectedSet(entities: [Fixtures.entity("root", parent: "root")])
        }
    }

    @Test("measuring under a parent that is not trusted gives parent-not-trusted, for good")
    func parentNotTrusted() throws {
        var chain = BootChain(expected: try Fixtures.paperTree(), bootID: "b1")
        // io-vm before vmm is trusted: the chain is broken even though the digest matches.
        let early = try chain.measure(entity: "io-vm", component: "image", digest: Fixtures.digest("io-vm/image"))
        #expect(early.state == .untrusted && early.reason == .parentNotTrusted && early.match && !early.parentTrusted)
        #expect(early.mayLoad(in: .enforce) == false)
        #expect(early.mayLoad(in: .audit) == true)
        // The whole subtree below it is tainted too.
        #expect(chain.status(of: "loader")?.reason == .ancestorUntrusted)
        #expect(chain.status(of: "kernel")?.reason == .ancestorUntrusted)
        // vmm becomes trusted later; io-vm stays untrusted with its first reason.
        try Fixtures.measureGood(&chain, "vmm")
        let late = try chain.measure(entity: "io-vm", component: "image", digest: Fixtures.digest("io-vm/image"))
        #expect(late.state == .untrusted && late.reason == .parentNotTrusted && late.parentTrusted)
        #expect(late.mayLoad(in: .enforce) == false)
        // A sibling measured after vmm became trusted is fine.
        _ = try chain.measure(entity: "base", component: "image", digest: Fixtures.digest("base/image"))
        #expect(chain.state(of: "base") == .trusted)
    }

    @Test("a pending parent breaks the chain just as an untrusted one does")
    func pendingParent() throws {
        var chain = BootChain(expected: try Fixtures.paperTree(), bootID: "b1")
        _ = try chain.measure(entity: "vmm", component: "kernel", digest: Fixtures.digest("vmm/kernel"))
        #expect(chain.state(of: "vmm") == .pending)
        let child = try chain.measure(entity: "base", component: "image", digest: Fixtures.digest("base/image"))
        #expect(child.reason == .parentNotTrusted)
        #expect(chain.state(of: "vmm") == .pending)  // the child's failure does not reach up
    }

    @Test("a mismatch taints the entity and every descendant, even trusted ones")
    func mismatchTaintsDescendants() throws {
        var chain = BootChain(expected: try Fixtures.paperTree(), bootID: "b1")
        for name in ["vmm", "io-vm", "loader", "kernel", "base", "office"] { try Fixtures.measureGood(&chain, name) }
        #expect(chain.state(of: "office") == .trusted)
        #expect(chain.state(of: "kernel") == .trusted)
        // The base image is re-measured (a qemu restart) and has been tampered with.
        let tampered = try chain.measure(entity: "base", component: "image", digest: Fixtures.digest("evil"))
        #expect(tampered.state == .untrusted && tampered.reason == .digestMismatch && !tampered.match)
        #expect(
            tampered.effects == [
                .extend(register: 10, digest: Fixtures.digest("evil"), eventData: "base/image"),
                .becameUntrusted(entity: "base", reason: .digestMismatch),
                .becameUntrusted(entity: "office", reason: .ancestorUntrusted),
                .becameUntrusted(entity: "dev", reason: .ancestorUntrusted),
            ]
        )
        #expect(chain.state(of: "office") == .untrusted)
        // Siblings of the tampered entity and their subtrees are untouched.
        #expect(chain.state(of: "vmm") == .trusted)
        #expect(chain.state(of: "kernel") == .trusted)
    }

    @Test("nothing becomes trusted again within a boot; a reset starts over")
    func onlyResetRestores() throws {
        var chain = BootChain(expected: try Fixtures.paperTree(), bootID: "b1")
        _ = try chain.measure(entity: "vmm", component: "kernel", digest: Fixtures.digest("wrong"))
        try Fixtures.measureGood(&chain, "vmm")
        #expect(chain.state(of: "vmm") == .untrusted)
        #expect(chain.status(of: "vmm")?.reason == .digestMismatch)
        let effects = chain.reset(bootID: "b2")
        #expect(effects == [.reset(previousBootID: "b1", bootID: "b2")])
        #expect(chain.bootID == "b2")
        #expect(chain.expected.entities.allSatisfy { chain.state(of: $0.name) == .pending })
        #expect(chain.status(of: "vmm")?.measured.isEmpty == true)
        try Fixtures.measureGood(&chain, "vmm")
        #expect(chain.state(of: "vmm") == .trusted)
    }

    @Test("every measurement is recorded whatever its verdict: extend first, then decide")
    func everyMeasurementRecorded() throws {
        var boot = MeasuredBoot(expected: try Fixtures.paperTree(), bootID: "b1")
        let attempts: [(String, String, String)] = [
            ("office", "overlay", "office/overlay"),  // parent not trusted
            ("vmm", "kernel", "vmm/kernel"),
            ("vmm", "initrd", "tampered"),  // mismatch
            ("vmm", "qemu", "vmm/qemu"),
            ("base", "image", "base/image"),  // parent untrusted
        ]
        var indices: [Int] = []
        for (entity, component, label) in attempts {
            let (outcome, index) = try boot.measure(
                entity: entity,
                component: component,
                digest: Fixtures.digest(label)
            )
            guard case .extend(let register, let digest, let data) = outcome.effects.first else {
                Issue.record("the first effect must be the extend")
                continue
            }
            #expect(
                register == outcome.register && digest == Fixtures.digest(label) && data == "\(entity)/\(component)"
            )
            indices.append(index)
        }
        #expect(indices == [0, 1, 2, 3, 4])
        #expect(boot.eventLog.events.count == attempts.count)
        #expect(boot.eventLog.replay() == boot.registers)
        // Register 8 is exactly the extend chain of the three vmm measurements.
        var expected = [UInt8](repeating: 0, count: 32)
        for label in ["vmm/kernel", "tampered", "vmm/qemu"] {
            expected = HashAlgorithm.sha256.hash(expected + Fixtures.digest(label).bytes)
        }
        #expect(try boot.registers.value(8).bytes == expected)
    }

    @Test("unknown entity or component is an error, not a verdict")
    func unknownNames() throws {
        var chain = BootChain(expected: try Fixtures.paperTree(), bootID: "b1")
        #expect(throws: UkeyCoreError(.unknownEntity, "")) {
            try chain.measure(entity: "nope", component: "image", digest: Fixtures.digest("x"))
        }
        #expect(throws: UkeyCoreError(.unknownComponent, "")) {
            try chain.measure(entity: "vmm", component: "nope", digest: Fixtures.digest("x"))
        }
        // An error leaves no trace in the chain.
        #expect(chain.status(of: "vmm") == EntityStatus())
    }

    @Test("the expected set refuses what is not a tree")
    func treeValidation() {
        #expect(throws: UkeyCoreError(.invalidEntityTree, "")) {
            try ExpectedSet(entities: [Fixtures.entity("a", parent: "b"), Fixtures.entity("b", parent: "a")])
        }
        #expect(throws: UkeyCoreError(.invalidEntityTree, "")) {
            try ExpectedSet(entities: [Fixtures.entity("a", parent: "ghost")])
        }
        #expect(throws: UkeyCoreError(.invalidEntityTree, "")) {
            try ExpectedSet(entities: [Fixtures.entity("a", parent: "root"), Fixtures.entity("a", parent: "root")])
        }
        #expect(throws: UkeyCoreError(.invalidEntityTree, "")) {
            try ExpectedSet(entities: [Fixtures.entity("a", parent: "root", components: [])])
        }
        #expect(throws: UkeyCoreError(.invalidRegister, "")) {
            try ExpectedSet(entities: [Fixtures.entity("a", parent: "root", register: 24)])
        }
    }

    @Test("the load decision follows the mode")
    func loadDecision() throws {
        var chain = BootChain(expected: try Fixtures.paperTree(), bootID: "b1")
        let good = try chain.measure(entity: "vmm", component: "kernel", digest: Fixtures.digest("vmm/kernel"))
        #expect(good.mayLoad(in: .enforce) && good.mayLoad(in: .audit))
        let bad = try chain.measure(entity: "vmm", component: "initrd", digest: Fixtures.digest("x"))
        #expect(!bad.mayLoad(in: .enforce) && bad.mayLoad(in: .audit))
        // Once untrusted, even a matching component is refused in enforce mode.
        let after = try chain.measure(entity: "vmm", component: "qemu", digest: Fixtures.digest("vmm/qemu"))
        #expect(after.match && !after.mayLoad(in: .enforce))
    }
}

@Suite("Boot chain: a VM that stops and starts again")
struct BootChainReleaseTests {
    static func digest(_ text: String) -> Digest { Digest.of(Array(text.utf8)) }

    static func chain() throws -> BootChain {
        let expected = try ExpectedSet(entities: [
            Entity(
                name: "vmm",
                parent: "root",
                kind: .host,
                register: 8,
                components: [Component(name: "kernel", expected: digest("vmm"))]
            ),
            Entity(
                name: "base",
                parent: "vmm",
                kind: .baseImage,
                register: 10,
                components: [Component(name: "image", expected: digest("base"))]
            ),
            Entity(
                name: "office",
                parent: "base",
                kind: .userVM,
                register: 11,
                components: [Component(name: "disk", expected: digest("office"))]
            ),
            Entity(
                name: "office-kernel",
                parent: "office",
                kind: .kernel,
                register: 12,
                components: [Component(name: "kernel", expected: digest("ok"))]
            ),
        ])
        var chain = BootChain(expected: expected, bootID: "b")
        _ = try chain.measure(entity: "vmm", component: "kernel", digest: digest("vmm"))
        _ = try chain.measure(entity: "base", component: "image", digest: digest("base"))
        _ = try chain.measure(entity: "office", component: "disk", digest: digest("office"))
        _ = try chain.measure(entity: "office-kernel", component: "kernel", digest: digest("ok"))
        return chain
    }

    @Test("released: the VM and what it loaded are pending, its parent is not; measured again it is trusted again")
    func releaseTrusted() throws {
        var chain = try Self.chain()
        #expect(try chain.release(entity: "office") == .released(["office", "office-kernel"]))
        #expect(
            chain.state(of: "office") == .pending && chain.state(of: "office-kernel") == .pending
                && chain.state(of: "base") == .trusted
        )
        #expect(chain.status(of: "office")?.measured.isEmpty == true)
        _ = try chain.measure(entity: "office", component: "disk", digest: Self.digest("office"))
        #expect(chain.state(of: "office") == .trusted)
    }

    @Test("an untrusted VM stays untrusted through a release; a release never makes anything trusted")
    func releaseUntrusted() throws {
        var chain = try Self.chain()
        _ = try chain.measure(entity: "office", component: "disk", digest: Self.digest("tampered"))
        #expect(chain.state(of: "office") == .untrusted && chain.state(of: "office-kernel") == .untrusted)
        #expect(try chain.release(entity: "office") == .stillUntrusted(.digestMismatch))
        #expect(chain.state(of: "office") == .untrusted)
        _ = try chain.measure(entity: "office", component: "disk", digest: Self.digest("office"))
        #expect(chain.state(of: "office") == .untrusted)
        #expect(throws: UkeyCoreError.self) { try chain.release(entity: "root") }
        #expect(throws: UkeyCoreError.self) { try chain.release(entity: "nobody") }
    }
}
