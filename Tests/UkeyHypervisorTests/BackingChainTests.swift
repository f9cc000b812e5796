import Foundation
import Testing
import UkeyHypervisor
import UkeyTesting

/// The chain of images a disk is layered on, read from the qcow2 headers, against qemu-img's own.
@Suite("qcow2 backing chains, checked against qemu-img; qcow2 headers")
struct BackingChainTests {
    static let qemuImg = ExternalTool("qemu-img")

    @Test(
        "a three-layer chain (relative and absolute backing names) is the chain qemu-img reports",
        .enabled(if: ExternalTool("qemu-img").shouldRun, "\(ExternalTool("qemu-img").skipReason)")
    )
    func chainMatchesQemuImg() throws {
        let dir = try TemporaryDirectory()
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "qcow2", dir.file("debian-base.qcow2"), "1M"]).status == 0)
        #expect(
            try Self.qemuImg.run([
                "create", "-q", "-f", "qcow2", "-b", "debian-base.qcow2", "-F", "qcow2", dir.file("office-layer.qcow2"),
            ]).status == 0
        )
        #expect(
            try Self.qemuImg.run([
                "create", "-q", "-f", "qcow2", "-b", dir.file("office-layer.qcow2"), "-F", "qcow2",
                dir.file("office.qcow2"),
            ]).status == 0
        )
        let ours = try BackingChain.of(dir.file("office.qcow2")).map {
            URL(fileURLWithPath: $0).standardizedFileURL.path
        }
        let info = try Self.qemuImg.run(["info", "--backing-chain", "--output=json", dir.file("office.qcow2")])
        let theirs = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [[String: Any]])
            .compactMap { $0["filename"] as? String }
            .map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        #expect(ours == theirs)
        #expect(ours.count == 3)
        // A raw image stands alone.
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "raw", dir.file("plain.img"), "1M"]).status == 0)
        #expect(try BackingChain.of(dir.file("plain.img")) == [dir.file("plain.img")])
    }

    @Test(
        "a chain that loops back is refused, naming the image",
        .enabled(if: ExternalTool("qemu-img").shouldRun, "\(ExternalTool("qemu-img").skipReason)")
    )
    func loopIsRefused() throws {
        let dir = try TemporaryDirectory()
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "qcow2", dir.file("a.qcow2"), "1M"]).status == 0)
        #expect(
            try Self.qemuImg.run(["create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", dir.file("b.qcow2")])
                .status == 0
        )
        // Point a.qcow2 at b.qcow2 by rewriting its header (qemu-img refuses to make a loop).
        #expect(
            try Self.qemuImg.run([
                "rebase", "-u", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", dir.file("a.qcow2"),
            ]).status == 0
        )
        #expect { try BackingChain.of(dir.file("b.qcow2")) } throws: { "\($0)".contains("loops back") }
    }

    /// A version 3 header (header_length 104) with a backing format extension ("qcow2") and the
    /// backing file's name after the extensions, as qemu-img writes them.
    static func header(name: String = "base.img!") -> [UInt8] {
        var header = QCOW2Header.magic + [0, 0, 0, 3]
        header += [0, 0, 0, 0, 0, 0, 0, 128] + [0, 0, 0, UInt8(name.utf8.count)]  // name at byte 128
        header += [UInt8](repeating: 0, count: 100 - header.count) + [0, 0, 0, 104]  // header_length
        header += [0xE2, 0x79, 0x2A, 0xCA, 0, 0, 0, 5] + Array("qcow2".utf8) + [0, 0, 0]  // backing format
        header += [UInt8](repeating: 0, count: 8)  // end of extensions
        return header + Array(name.utf8)
    }

    @Test(
        "header bytes: the backing file and its format are read; truncations, oversized or misplaced names, an external data file and random garbage are refused with a reason, never a crash"
    )
    func untrustedHeaders() throws {
        let header = Self.header()
        let parsed = try QCOW2Header(parsing: header)
        #expect(
            parsed.backingFile == "base.img!" && parsed.backingFormat == "qcow2" && parsed.dataFile == nil
                && !parsed.hasExternalData
        )
        for cut in 0..<header.count {
            #expect(throws: HypervisorError.self) { try QCOW2Header(parsing: Array(header.prefix(cut))) }
        }
        var long = header
        long[16...19] = [0, 0, 0x10, 0]  // 4096 bytes
        #expect { try QCOW2Header(parsing: long) } throws: { "\($0)".contains("at most 1023") }
        var far = header
        far[8...15] = [0, 0, 0, 1, 0, 0, 0, 0]
        #expect { try QCOW2Header(parsing: far) } throws: { "\($0)".contains("outside the header") }
        var external = header
        external[79] = 0x04  // incompatible feature bit 2: an external data file
        #expect(try QCOW2Header(parsing: external).hasExternalData)
        // Random corruption: whatever the reader takes, it took the name where the header's
        // layout (read independently here: offset at 8, size at 16, big-endian) puts it.
        var generator = SeededRandom.forTest()
        var named = 0
        for _ in 0..<5_000 {
            var bytes = header
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            guard let parsed = try? QCOW2Header(parsing: bytes) else { continue }
            let offset = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
            let size = Int(bytes[16..<20].reduce(0) { $0 << 8 | UInt32($1) })
            if offset == 0 || size == 0 {
                #expect(parsed.backingFile == nil, "\(generator)")
            } else {
                let name = String(decoding: bytes[Int(offset)..<(Int(offset) + size)], as: UTF8.self)
                #expect(parsed.backingFile == name, "\(generator)")
                named += 1
            }
        }
        #expect(named > 0, "\(generator)")
    }

    @Test(
        "chains QEMU would read otherwise are refused, naming the image: a backing file without its format, a json: or protocol backing name, an external data file; a raw backing file ends the chain",
        .enabled(if: ExternalTool("qemu-img").shouldRun, "\(ExternalTool("qemu-img").skipReason)")
    )
    func refusedChains() throws {
        let dir = try TemporaryDirectory()
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "qcow2", dir.file("base.qcow2"), "1M"]).status == 0)
        #expect(
            try Self.qemuImg.run([
                "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", dir.file("top.qcow2"),
            ]).status == 0
        )
        #expect(
            try BackingChain.layers(of: dir.file("top.qcow2"), format: "qcow2").map(\.format) == ["qcow2", "qcow2"]
        )
        // qemu-img 7.2 writes no backing file without its format; QEMU still opens one (and
        // guesses the format). Make one: the extension's type changed to one QEMU skips.
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("top.qcow2"))))
        let at = try #require(bytes.firstRange(of: [0xE2, 0x79, 0x2A, 0xCA]))
        bytes.replaceSubrange(at, with: [0x12, 0x34, 0x56, 0x78])
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("top.qcow2")))
        #expect(try Self.qemuImg.run(["info", dir.file("top.qcow2")]).stdout.contains("base.qcow2"))
        #expect { try BackingChain.layers(of: dir.file("top.qcow2"), format: "qcow2") } throws: {
            "\($0)".contains("without its format")
        }
        #expect(
            try Self.qemuImg.run([
                "rebase", "-u", "-q", "-f", "qcow2", "-b",
                #"json:{"file":{"driver":"file","filename":"/etc/hostname"}}"#, "-F", "raw", dir.file("top.qcow2"),
            ]).status == 0
        )
        #expect { try BackingChain.layers(of: dir.file("top.qcow2"), format: "qcow2") } throws: {
            "\($0)".contains("json:")
        }
        #expect(
            try Self.qemuImg.run([
                "rebase", "-u", "-q", "-f", "qcow2", "-b", "nbd:localhost:10809", "-F", "raw", dir.file("top.qcow2"),
            ]).status == 0
        )
        #expect { try BackingChain.layers(of: dir.file("top.qcow2"), format: "qcow2") } throws: {
            "\($0)".contains("protocol")
        }
        #expect(try Self.qemuImg.run(["create", "-q", "-f", "raw", dir.file("data.raw"), "1M"]).status == 0)
        #expect(
            try Self.qemuImg.run([
                "create", "-q", "-f", "qcow2", "-o", "data_file=\(dir.file("data.raw"))", dir.file("split.qcow2"), "1M",
            ]).status == 0
        )
        #expect { try BackingChain.layers(of: dir.file("split.qcow2"), format: "qcow2") } throws: {
            "\($0)".contains("external file")
        }
        // A qcow2 image named raw is read raw: no chain under it; a raw base ends the chain.
        #expect(
            try Self.qemuImg.run([
                "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "raw", dir.file("onraw.qcow2"),
            ]).status == 0
        )
        #expect(
            try BackingChain.layers(of: dir.file("onraw.qcow2"), format: "qcow2").map(\.format) == ["qcow2", "raw"]
        )
        #expect(try BackingChain.layers(of: dir.file("onraw.qcow2"), format: "raw").count == 1)
    }
}
