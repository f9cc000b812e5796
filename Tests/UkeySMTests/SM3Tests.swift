import Foundation
import Testing
import UkeySM
import UkeyTesting

@Suite("SM3 through the system's OpenSSL")
struct SM3Tests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("GB/T 32905-2016's examples: \"abc\" and \"abcd\" x 16")
    func standardVectors() {
        #expect(
            Self.hex(SM3.hash(Array("abc".utf8))) == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        )
        #expect(
            Self.hex(SM3.hash(Array(String(repeating: "abcd", count: 16).utf8)))
                == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
        )
    }

    @Test(
        "streamed in random pieces equals hashed at once; a copy hashes on independently; finalize leaves the hasher as it was"
    )
    func streaming() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let data = (0..<Int.random(in: 0...5000, using: &generator)).map { _ in
                UInt8.random(in: 0...255, using: &generator)
            }
            var hasher = SM3()
            var offset = 0
            while offset < data.count {
                let end = min(data.count, offset + Int.random(in: 1...700, using: &generator))
                hasher.update(Array(data[offset..<end]))
                offset = end
            }
            #expect(hasher.finalize() == SM3.hash(data))
            #expect(hasher.finalize() == SM3.hash(data))
            var copy = hasher
            copy.update([1, 2, 3])
            #expect(hasher.finalize() == SM3.hash(data))
            #expect(copy.finalize() == SM3.hash(data + [1, 2, 3]))
        }
    }

    @Test("openssl dgst -sm3 agrees on random inputs up to 1 MiB")
    func agreesWithOpenSSL() throws {
        let directory = try TemporaryDirectory("sm3")
        for size in [0, 1, 55, 56, 64, 65, 1000, 1 << 20] {
            let data = (0..<size).map { _ in UInt8.random(in: 0...255) }
            try directory.write("in.bin", data)
            let result = try ExternalTool("openssl").run(["dgst", "-sm3", "-r", directory.file("in.bin")])
            #expect(
                result.stdout.hasPrefix(Self.hex(SM3.hash(data)) + " "),
                "size \(size): \(result.stdout)\(result.stderr)"
            )
        }
    }

    @Test("gmssl (PyPI, pure Python, no OpenSSL) agrees on the standard vectors and random inputs")
    func agreesWithGMSSL() throws {
        let inputs =
            [Array("abc".utf8), Array(String(repeating: "abcd", count: 16).utf8)]
            + (0..<20).map { _ in (0..<Int.random(in: 0...300)).map { _ in UInt8.random(in: 0...255) } }
        let script = """
            import sys
            from gmssl import sm3, func
            for line in sys.stdin.read().split():
                data = bytes.fromhex(line[1:])
                print(sm3.sm3_hash(func.bytes_to_list(data)))
            """
        let result = try ExternalTool("python3").run(
            ["-c", script],
            stdin: Data(inputs.map { "x" + Self.hex($0) }.joined(separator: "\n").utf8)
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").map(String.init) == inputs.map { Self.hex(SM3.hash($0)) })
    }
}
