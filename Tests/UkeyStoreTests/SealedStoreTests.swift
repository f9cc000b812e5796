import Crypto
import Foundation
import Testing
import UkeyStore
import UkeyTesting

@Suite("Sealed store")
struct SealedStoreTests {
    static func fresh() throws -> (TemporaryDirectory, String) {
        let parent = try TemporaryDirectory("ukey-store")
        return (parent, parent.file("state"))
    }

    @Test("records round-trip through a reopen, and every commit advances the generation")
    func roundTrip() throws {
        let (parent, directory) = try Self.fresh()
        _ = parent
        let protector = DeviceKeyProtector(stateDirectory: directory)
        var store = try SealedStore.create(in: directory, protector: protector, initial: ["a": [1, 2, 3]])
        #expect(store.generation == 1)
        try store.commit(["b": Array("hello".utf8), "a": nil])
        #expect(store.generation == 2)
        let reopened = try SealedStore.open(in: directory, protector: protector)
        #expect(reopened.records == ["b": Array("hello".utf8)])
        #expect(reopened.generation == 2)
        // Nothing readable in the clear on disk.
        let raw = try Data(contentsOf: URL(fileURLWithPath: reopened.path))
        #expect(raw.range(of: Data("hello".utf8)) == nil)
        #expect(throws: StoreError(.alreadyExists, path: "", "")) {
            try SealedStore.create(in: directory, protector: protector)
        }
    }

    @Test("files are 0600 and the directory 0700; looser permissions are refused, naming path and mode")
    func permissions() throws {
        let (parent, directory) = try Self.fresh()
        _ = parent
        let protector = DeviceKeyProtector(stateDirectory: directory)
        _ = try SealedStore.create(in: directory, protector: protector)
        for file in ["store.sealed", "device.key"] {
            let mode =
                try FileManager.default.attributesOfItem(atPath: "\(directory)/\(file)")[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }
        #expect(try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int == 0o700)

        chmod(directory, 0o755)
        #expect {
            try SealedStore.open(in: directory, protector: protector)
        } throws: { error in
            let error = error as! StoreError
            return error.code == .insecurePermissions && error.description.contains(directory)
                && error.description.contains("0755") && error.description.contains("0700")
        }
        chmod(directory, 0o700)
        chmod("\(directory)/store.sealed", 0o644)
        #expect {
            try SealedStore.open(in: directory, protector: protector)
        } throws: { error in
            let error = error as! StoreError
            return error.code == .insecurePermissions && error.description.contains("store.sealed")
                && error.description.contains("0644") && error.description.contains("0600")
        }
        chmod("\(directory)/store.sealed", 0o600)
        chmod("\(directory)/device.key", 0o640)
        #expect {
            try SealedStore.open(in: directory, protector: protector)
        } throws: { error in
            "\(error)".contains("device.key: has permissions 0640")
        }
        chmod("\(directory)/device.key", 0o600)
        _ = try SealedStore.open(in: directory, protector: protector)
    }

    @Test("every modified byte of every store file is detected, naming the file and saying integrity")
    func everyByteFlip() throws {
        let (parent, directory) = try Self.fresh()
        _ = parent
        let protector = DeviceKeyProtector(stateDirectory: directory)
        var store = try SealedStore.create(
            in: directory,
            protector: protector,
            initial: ["user.alice": Array(repeating: 7, count: 40)]
        )
        try store.commit(["counter": [0, 0, 0, 3]])
        var checked = 0
        for file in ["store.sealed", "device.key"] {
            let path = "\(directory)/\(file)"
            let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            for index in original.indices {
                for flip: UInt8 in [0x01, 0x80] {
                    var modified = original
                    modified[index] ^= flip
                    try Data(modified).write(to: URL(fileURLWithPath: path))
                    chmod(path, 0o600)
                    #expect {
                        try SealedStore.open(in: directory, protector: protector)
                    } throws: { error in
                        let error = error as! StoreError
                        return error.code == .integrity && error.description.contains(file)
                            && error.description.contains("integrity")
                    }
                    checked += 1
                }
            }
            // Truncation and extension are modifications too.
            for cut in [0, 1, original.count / 2, original.count - 1] {
                try Data(original[..<cut]).write(to: URL(fileURLWithPath: path))
                #expect(throws: StoreError(.integrity, path: "", "")) {
                    try SealedStore.open(in: directory, protector: protector)
                }
            }
            try Data(original + [0]).write(to: URL(fileURLWithPath: path))
            #expect(throws: StoreError(.integrity, path: "", "")) {
                try SealedStore.open(in: directory, protector: protector)
            }
            try Data(original).write(to: URL(fileURLWithPath: path))
        }
        #expect(checked > 2 * 200)
        #expect(try SealedStore.open(in: directory, protector: protector).records["counter"] == [0, 0, 0, 3])
    }

    @Test("a store does not open with another installation's device key")
    func otherDevice() throws {
        let (parentA, a) = try Self.fresh()
        let (parentB, b) = try Self.fresh()
        _ = (parentA, parentB)
        _ = try SealedStore.create(in: a, protector: DeviceKeyProtector(stateDirectory: a))
        _ = try SealedStore.create(in: b, protector: DeviceKeyProtector(stateDirectory: b))
        try FileManager.default.removeItem(atPath: "\(a)/device.key")
        try FileManager.default.copyItem(atPath: "\(b)/device.key", toPath: "\(a)/device.key")
        #expect {
            try SealedStore.open(in: a, protector: DeviceKeyProtector(stateDirectory: a))
        } throws: { error in
            (error as! StoreError).code == .integrity && "\(error)".contains("different installations")
        }
    }

    @Test("kill -9 at 200+ random points: every reopen is the old or the new state, never a mix")
    func crashLoop() async throws {
        let (parent, directory) = try Self.fresh()
        _ = parent
        let helper = PackagePaths.builtProduct("ukey-testhelper")
        let protector = DeviceKeyProtector(stateDirectory: directory)
        var kills = 0
        var lastAcknowledged: UInt64 = 0
        var sawProgress = 0
        while kills < 220 {
            let child = try ChildProcess(helper, ["store-writer", directory])
            // Random points: a quarter of the kills anywhere from start-up on, the rest after the
            // child's first commit, so most land in the middle of a write.
            if kills % 4 != 0 { child.waitForFirstLine() }
            try await Task.sleep(nanoseconds: UInt64.random(in: 0...20_000_000))
            child.kill9()
            let printed = child.collectStdout().split(separator: "\n").compactMap { UInt64($0) }
            kills += 1
            guard SealedStore.exists(in: directory) else {
                #expect(printed.isEmpty, "a commit was acknowledged but no store exists")
                continue
            }
            let store = try SealedStore.open(in: directory, protector: protector)
            // Complete: the blob matches its hash, and the counter equals the generation.
            if let blob = store.records["blob"] {
                #expect(store.records["hash"] == Array(SHA256.hash(data: blob)))
                let n = store.records["n"]!.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                #expect(n == store.generation)
            }
            // Durable: every acknowledged commit survived; at most the one in flight went further.
            let acknowledged = printed.last ?? lastAcknowledged
            #expect(store.generation >= acknowledged)
            #expect(store.generation <= acknowledged + 1)
            if store.generation > lastAcknowledged { sawProgress += 1 }
            lastAcknowledged = store.generation
        }
        #expect(sawProgress >= 150, "most kills should land after some commits")
    }
}
