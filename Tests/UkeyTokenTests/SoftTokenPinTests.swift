import Foundation
import Testing
import UkeyTesting
import UkeyToken

@Suite("Soft token: PINs, lockout, unblock")
struct SoftTokenPinTests {
    @Test("a token is initialised once; opening an uninitialised one says so")
    func initialization() throws {
        let fixture = try TokenFixture()
        #expect(throws: TokenError(.notInitialized, "")) { try fixture.reopen() }
        _ = try fixture.initialize()
        #expect(throws: TokenError(.alreadyInitialized, "")) { try fixture.initialize() }
        _ = try fixture.reopen()
    }

    @Test("PIN and SO PIN rules give clear errors and never echo the PIN")
    func pinRules() async throws {
        let fixture = try TokenFixture()
        let signer = try IdentityCA.makeRoot(key: fixture.signerKey, commonName: "s", now: Date())
        #expect {
            try SoftToken.initialize(fixture.configuration, soPIN: "short", policySigner: signer, bootID: "b")
        } throws: { error in
            "\(error)" == "the SO PIN must be 8-64 characters long, got 5"
        }
        let token = try fixture.initialize()
        for (pin, message) in [
            ("12345", "the PIN must be 6-64 characters long, got 5"),
            ("123456\u{7}", "the PIN may contain only printable ASCII characters (no control characters or accents)"),
            ("pässwörd", "the PIN may contain only printable ASCII characters (no control characters or accents)"),
            (String(repeating: "1", count: 65), "the PIN must be 6-64 characters long, got 65"),
        ] {
            await #expect {
                try await token.addUser("alice", pin: pin, roles: [])
            } throws: { error in
                (error as? TokenError)?.code == .invalidPIN && "\(error)" == message && !"\(error)".contains(pin)
            }
        }
        await #expect(throws: TokenError(.invalidName, "")) { try await token.addUser("a/b", pin: "123456", roles: []) }
        await #expect(throws: TokenError(.invalidName, "")) { try await token.addUser("root-ca", pin: "123456", roles: []) }
    }

    @Test("three wrong PINs lock; the lock persists across restart; a right PIN restores the counter")
    func lockout() async throws {
        let fixture = try TokenFixture()
        var token = try fixture.initialize()
        try await token.addUser("alice", pin: "correct-1", roles: ["office"])
        #expect(try await token.verifyPIN(user: "alice", pin: "wrong-1") == .rejected(retriesLeft: 2))
        #expect(try await token.verifyPIN(user: "alice", pin: "correct-1") == .accepted)
        #expect(try await token.pinStatus(user: "alice") == (3, 3))

        #expect(try await token.verifyPIN(user: "alice", pin: "wrong-1") == .rejected(retriesLeft: 2))
        token = try fixture.reopen()  // a restart keeps the count
        #expect(try await token.verifyPIN(user: "alice", pin: "wrong-2") == .rejected(retriesLeft: 1))
        #expect(try await token.verifyPIN(user: "alice", pin: "wrong-3") == .locked)
        #expect(try await token.verifyPIN(user: "alice", pin: "correct-1") == .locked)
        token = try fixture.reopen()
        #expect(try await token.verifyPIN(user: "alice", pin: "correct-1") == .locked)
        #expect(try await token.pinStatus(user: "alice") == (0, 3))
        #expect(try await token.verifyPIN(user: "mallory", pin: "whatever") == .unknownUser)
    }

    @Test("concurrent checks of one user's PIN are serialized: a burst of right PINs never locks, wrong ones spend exactly the tries")
    func concurrentChecks() async throws {
        let fixture = try TokenFixture()
        let token = try fixture.initialize()
        try await token.addUser("alice", pin: "correct-1", roles: [])
        let right = try await withThrowingTaskGroup(of: PinVerdict.self) { group in
            for _ in 0..<10 { group.addTask { try await token.verifyPIN(user: "alice", pin: "correct-1") } }
            return try await group.reduce(into: [PinVerdict]()) { $0.append($1) }
        }
        #expect(right == Array(repeating: .accepted, count: 10))
        #expect(try await token.pinStatus(user: "alice") == (3, 3))
        let wrong = try await withThrowingTaskGroup(of: PinVerdict.self) { group in
            for _ in 0..<10 { group.addTask { try await token.verifyPIN(user: "alice", pin: "wrong-pin") } }
            return try await group.reduce(into: [PinVerdict]()) { $0.append($1) }
        }
        #expect(wrong.filter { if case .rejected = $0 { true } else { false } }.count == 2)
        #expect(wrong.filter { $0 == .locked }.count == 8)
        #expect(try await token.pinStatus(user: "alice") == (0, 3))
    }

    @Test("the SO PIN unblocks a locked PIN; a wrong SO PIN costs an SO try")
    func unblock() async throws {
        let fixture = try TokenFixture()
        let token = try fixture.initialize()
        try await token.addUser("alice", pin: "correct-1", roles: [])
        for _ in 0..<3 { _ = try await token.verifyPIN(user: "alice", pin: "nope-nope") }
        #expect(try await token.verifyPIN(user: "alice", pin: "correct-1") == .locked)

        #expect(try await token.unblockPIN(user: "alice", soPIN: "wrong-so-pin", newPIN: "fresh-pin") == .rejected(retriesLeft: 9))
        #expect(try await token.verifyPIN(user: "alice", pin: "fresh-pin") == .locked)
        #expect(try await token.unblockPIN(user: "alice", soPIN: TokenFixture.soPIN, newPIN: "fresh-pin") == .accepted)
        #expect(try await token.soPINStatus() == (10, 10))
        #expect(try await token.verifyPIN(user: "alice", pin: "correct-1") == .rejected(retriesLeft: 2))
        #expect(try await token.verifyPIN(user: "alice", pin: "fresh-pin") == .accepted)
        await #expect(throws: TokenError(.unknownUser, "")) {
            try await token.unblockPIN(user: "bob", soPIN: TokenFixture.soPIN, newPIN: "fresh-pin")
        }
        await #expect(throws: TokenError(.invalidPIN, "")) {
            try await token.unblockPIN(user: "alice", soPIN: TokenFixture.soPIN, newPIN: "x")
        }
        #expect(try await token.soPINStatus() == (10, 10), "invalid input costs no SO try")
    }

    @Test("ten wrong SO PINs lock the token for good, across restarts")
    func soLockout() async throws {
        let fixture = try TokenFixture()
        var token = try fixture.initialize()
        try await token.addUser("alice", pin: "correct-1", roles: [])
        for expected in stride(from: 9, through: 1, by: -1) {
            #expect(try await token.unblockPIN(user: "alice", soPIN: "wrong-so-pin", newPIN: "fresh-pin") == .rejected(retriesLeft: expected))
        }
        #expect(try await token.unblockPIN(user: "alice", soPIN: "wrong-so-pin", newPIN: "fresh-pin") == .locked)
        token = try fixture.reopen()
        await #expect(throws: TokenError(.tokenLocked, "")) {
            try await token.unblockPIN(user: "alice", soPIN: TokenFixture.soPIN, newPIN: "fresh-pin")
        }
        await #expect(throws: TokenError(.tokenLocked, "")) { try await token.verifyPIN(user: "alice", pin: "correct-1") }
        await #expect(throws: TokenError(.tokenLocked, "")) { try await token.addUser("bob", pin: "123456", roles: []) }
        // Measurement and attestation go on.
        _ = try await token.quote(nonce: [1, 2, 3], registers: [8], eventLog: .of([]))
    }

    @Test("kill -9 in the middle of a PIN check costs a try and never gives one back")
    func killDuringCheck() async throws {
        // The production KDF, so the check takes long enough to be interrupted.
        let fixture = try TokenFixture(kdf: .standard)
        _ = try fixture.initialize()
        try await fixture.reopen().addUser("alice", pin: "correct-1", roles: [])
        let helper = PackagePaths.builtProduct("ukey-testhelper")
        var decrementsByKill = 0, completed = 0, unblocks = 0
        for _ in 0..<40 {
            let before = try await fixture.reopen().pinStatus(user: "alice").triesLeft
            if before == 0 {
                #expect(try await fixture.reopen().unblockPIN(user: "alice", soPIN: TokenFixture.soPIN, newPIN: "correct-1") == .accepted)
                unblocks += 1
                continue
            }
            let child = try ChildProcess(helper, ["verify-pin", fixture.configuration.stateDirectory, "alice", "correct-1"])
            // From the moment the check starts: the derivation takes ~0.1 s or more, so most kills
            // land between the decrement and the restore, some after it.
            child.waitForFirstLine()
            try await Task.sleep(nanoseconds: UInt64.random(in: 0...200_000_000))
            child.kill9()
            let after = try await fixture.reopen().pinStatus(user: "alice").triesLeft
            if child.exitedNormally {
                // The check completed: the right PIN restored the counter.
                #expect(after == 3)
                completed += 1
            } else {
                // Killed: the counter is where it was (killed before the decrement) or one lower.
                #expect(after == before || after == before - 1, "before \(before), after \(after)")
                if after == before - 1 { decrementsByKill += 1 }
            }
        }
        #expect(decrementsByKill >= 3, "some kills must land between the decrement and the restore")
        #expect(completed + decrementsByKill + unblocks <= 40)
    }
}
