import Crypto
import Foundation
import UkeyFuzzTargets
import UkeySM
import UkeyStore
import UkeyToken

/// A child process for crash tests: the tests start it, kill it with SIGKILL at random points, and
/// check what it left on disk. Not installed; built with the package so `swift test` finds it.
///
///   ukey-testhelper store-writer DIR          commit forever; print each committed generation
///   ukey-testhelper verify-pin DIR USER PIN   one PIN check; exit 0 accepted, 1 otherwise
///   ukey-testhelper pin-timing DIR USER:PIN N times N pairs: unknown user, then USER's wrong PIN
///   ukey-testhelper fuzz-seeds DIR            each fuzz target's seeds, for Tests/Fuzz/Corpus
///   ukey-testhelper sm-operations N           N mixed SM2/SM3 operations after a warm-up; print
///                                             the resident KiB before and after them (a leak check
///                                             in a process of its own: the test runner's RSS moves
///                                             with every test running beside it)
@main
struct TestHelper {
    static func main() async {
        let arguments = CommandLine.arguments
        do {
            switch arguments.dropFirst().first {
            case "store-writer" where arguments.count == 3:
                try storeWriter(directory: arguments[2])
            case "fuzz-seeds" where arguments.count == 3:
                // Writes each fuzz target's seeds to DIR/<target>/seed-<n> (run from the repo root).
                for target in FuzzTarget.all {
                    let directory = arguments[2] + "/" + target.name
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    for (index, seed) in target.seeds().enumerated() {
                        try Data(seed).write(to: URL(fileURLWithPath: "\(directory)/seed-\(index)"))
                    }
                }
            case "pin-timing" where arguments.count == 5:
                // Times ROUNDS pairs: an unknown user's refusal, then USER's wrong PIN (the counter
                // reset untimed with PIN after each); prints "pair <unknown ns> <wrong ns>". In a
                // process of its own, so the test's other suites do not queue PIN derivations
                // ahead of these on the shared derivation queue.
                let token = try SoftToken.open(SoftToken.Configuration(stateDirectory: arguments[2]), bootID: "helper")
                guard let rounds = Int(arguments[4]) else { exit(2) }
                let (user, pin) = (
                    arguments[3].split(separator: ":").map(String.init)[0],
                    arguments[3].split(separator: ":").map(String.init)[1]
                )
                for round in 0..<rounds {
                    let start = DispatchTime.now()
                    guard try await token.verifyPIN(user: "nobody-\(round)", pin: "wrong-pin-0") == .unknownUser else {
                        exit(1)
                    }
                    let middle = DispatchTime.now()
                    guard case .rejected = try await token.verifyPIN(user: user, pin: "wrong-pin-0") else { exit(1) }
                    let end = DispatchTime.now()
                    guard try await token.verifyPIN(user: user, pin: pin) == .accepted else { exit(1) }
                    print(
                        "pair \(middle.uptimeNanoseconds - start.uptimeNanoseconds) \(end.uptimeNanoseconds - middle.uptimeNanoseconds)"
                    )
                }
            case "verify-pin" where arguments.count == 5:
                let token = try SoftToken.open(SoftToken.Configuration(stateDirectory: arguments[2]), bootID: "helper")
                // Tell the test the check is about to start: the kill window is measured from here.
                FileHandle.standardOutput.write(Data("checking\n".utf8))
                let verdict = try await token.verifyPIN(user: arguments[3], pin: arguments[4])
                print("\(verdict)")
                exit(verdict == .accepted ? 0 : 1)
            case "sm-operations" where arguments.count == 3:
                guard let count = Int(arguments[2]) else { exit(2) }
                try smOperations(count)
            default:
                FileHandle.standardError.write(
                    Data(
                        "usage: ukey-testhelper store-writer DIR | verify-pin DIR USER PIN | pin-timing DIR USER:PIN N | fuzz-seeds DIR | sm-operations N\n"
                            .utf8
                    )
                )
                exit(2)
            }
        } catch {
            FileHandle.standardError.write(Data("ukey-testhelper: \(error)\n".utf8))
            exit(3)
        }
    }

    static func smOperations(_ count: Int) throws {
        let message = Array("the message".utf8)
        let key = try SM2PrivateKey()
        let publicKey = try key.publicKey
        let pem = key.pemRepresentation
        let signature = try key.signature(for: message)
        func round(_ count: Int) throws {
            for index in 0..<count {
                switch index % 5 {
                case 0: _ = SM3.hash(message)
                case 1: _ = try SM2PrivateKey(pemRepresentation: pem)
                case 2: _ = try key.signature(for: message)
                case 3: _ = publicKey.isValidSignature(signature, for: message)
                default: _ = try? SM2PublicKey(derRepresentation: [0x30, 0x03, 0x02, 0x01, 0x01])
                }
            }
        }
        func resident() -> Int {
            let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        try round(10_000)
        let before = resident()
        try round(count)
        print("\(before) \(resident())")
    }

    /// Each commit writes a counter and a random blob with its hash, so a reader can tell a
    /// complete state from a mixed one. The generation is printed only after the commit returned.
    static func storeWriter(directory: String) throws {
        let protector = DeviceKeyProtector(stateDirectory: directory)
        var store =
            SealedStore.exists(in: directory)
            ? try SealedStore.open(in: directory, protector: protector)
            : try SealedStore.create(in: directory, protector: protector)
        while true {
            let blob = (0..<Int.random(in: 1...16_384)).map { _ in UInt8.random(in: 0...255) }
            let n = store.generation + 1
            try store.commit([
                "n": withUnsafeBytes(of: n.bigEndian) { Array($0) },
                "blob": blob,
                "hash": Array(SHA256.hash(data: blob)),
            ])
            // One write(2) per line: unbuffered, so the parent sees each generation as soon as it is durable.
            FileHandle.standardOutput.write(Data("\(store.generation)\n".utf8))
        }
    }
}
