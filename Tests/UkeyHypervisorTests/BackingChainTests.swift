import Foundation
import Testing
import UkeyHypervisor
import UkeyTesting

/// The chain of images a disk is layered on, read from the qcow2 headers, against qemu-img's own.
@Suite("qcow2 backing chains, checked against qemu-img; qcow2 headers")
struct BackingChainTests {
    static let qemuImg = ExternalTool("qemu-img")

    @Test("a three-layer chain (relative and absolute backing names) is the chain qemu-img reports", .enabled(if: ExternalTool("qemu-img").shouldRun, "\(ExternalTool("qemu-img").skipReason)"))
    func chainMatchesQemuImg() throws {
        let dir = try TemporaryDirectory()
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "qcow2", dir.file("debian-base.qcow2"), "1M"]).status == 0)
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "qcow2", "-b", "debian-base.qcow2", "-F", "qcow2", dir.file("office-layer.qcow2")]).status == 0)
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "qcow2", "-b", dir.file("office-layer.qcow2"), "-F", "qcow2", dir.file("office.qcow2")]).status == 0)
        let ours = try BackingChain.of(dir.file("office.qcow2")).map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let info = try Self.qemuImg.run(["info", "--backing-chain", "--output=json", dir.file("office.qcow2")])
        let theirs = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [[String: Any]]).compactMap { $0["filename"] as? String }
            .map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        #expect(ours == theirs)
        #expect(ours.count == 3)
        // A raw image stands alone.
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "raw", dir.file("plain.img"), "1M"]).status == 0)
        #expect(try BackingChain.of(dir.file("plain.img")) == [dir.file("plain.img")])
    }

    @Test("a chain that loops back is refused, naming the image", .enabled(if: ExternalTool("qemu-img").shouldRun, "\(ExternalTool("qemu-img").skipReason)"))
    func loopIsRefused() throws {
        let dir = try TemporaryDirectory()
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "qcow2", dir.file("a.qcow2"), "1M"]).status == 0)
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", dir.file("b.qcow2")]).status == 0)
        // Point a.qcow2 at b.qcow2 by rewriting its header (qemu-img refuses to make a loop).
        #expect(try Self.qemuImg.run(["rebase", "-u", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", dir.file("a.qcow2")]).status == 0)
        #expect { try BackingChain.of(dir.file("b.qcow2")) } throws: { "\($0)".contains("loops back") }
    }

    @Test("header bytes: truncations, oversized or misplaced names and random garbage are refused with a reason, never a crash")
    func untrustedHeaders() throws {
        var header = QCOW2Header.magic + [0, 0, 0, 3]
        header += [0, 0, 0, 0, 0, 0, 0, 104] + [0, 0, 0, 9]  // name at byte 104, 9 bytes
        header += [UInt8](repeating: 0, count: 104 - header.count) + Array("base.img!".utf8)
        #expect(try QCOW2Header(parsing: header).backingFile == "base.img!")
        for cut in 0..<header.count {
            #expect(throws: HypervisorError.self) { try QCOW2Header(parsing: Array(header.prefix(cut))) }
        }
        var long = header
        long[16...19] = [0, 0, 0x10, 0]  // 4096 bytes
        #expect { try QCOW2Header(parsing: long) } throws: { "\($0)".contains("at most 1023") }
        var far = header
        far[8...15] = [0, 0, 0, 1, 0, 0, 0, 0]
        #expect { try QCOW2Header(parsing: far) } throws: { "\($0)".contains("outside the header") }
        // Random corruption: the reader agrees with the header's layout read independently here
        // (qcow2 spec: version at 4, backing name offset at 8 and size at 16, big-endian).
        var generator = SeededRandom.forTest()
        var named = 0
        for _ in 0..<5_000 {
            var bytes = header
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            let version = bytes[4..<8].reduce(0) { $0 << 8 | UInt32($1) }
            let offset = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }, size = Int(bytes[16..<20].reduce(0) { $0 << 8 | UInt32($1) })
            var expected: String??
            if Array(bytes[0..<4]) == QCOW2Header.magic, version == 2 || version == 3 {
                if offset == 0 || size == 0 {
                    expected = .some(nil)
                } else if size <= 1023, offset >= 20, offset <= UInt64(bytes.count), Int(offset) + size <= bytes.count {
                    let name = Array(bytes[Int(offset)..<(Int(offset) + size)])
                    if !name.contains(0), let text = String(validating: name, as: UTF8.self) { expected = .some(text) }
                }
            }
            let parsed = try? QCOW2Header(parsing: bytes)
            let outcome: String?? = parsed.map { $0.backingFile }
            #expect(outcome == expected, "\(generator)")
            if parsed?.backingFile != nil { named += 1 }
        }
        #expect(named > 0, "\(generator)")
    }
}
