import Foundation
import UkeyCore
import UkeyPolicy
import UkeySM

/// SM3 and SM2 against OpenSSL's own command line, in the same run: SM3 hashing of a file as
/// Measure(path) does it (FileDigester) against `openssl dgst -sm3`, and SM2 signatures (with the
/// ID, as ukey always signs) against `openssl speed -elapsed sm2`.
extension Bench {
    static func gmBenchmarks(work: String) throws {
        print("\nSM3 and SM2 (GM/T), ukey through libcrypto against openssl's command line, same run\n")
        let path = work + "/sm3-input.bin"
        let size = 256 << 20
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for index in chunk.indices { chunk[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 13) }
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw BenchError("cannot create \(path)")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        for _ in 0..<(size >> 20) { handle.write(Data(chunk)) }
        try handle.close()

        // Best of 3 each, alternated, with the file in the page cache for all of them.
        var opensslBest = Double.infinity
        var oursBest = Double.infinity
        var opensslDigest = ""
        var ours: Digest?
        for _ in 0..<3 {
            let start = Date()
            opensslDigest = try runTool("/usr/bin/openssl", ["dgst", "-sm3", "-r", path])
            opensslBest = min(opensslBest, Date().timeIntervalSince(start))
            let begin = Date()
            ours = try FileDigester.digest(ofFileAt: path, using: .sm3)
            oursBest = min(oursBest, Date().timeIntervalSince(begin))
        }
        guard let ours, opensslDigest.hasPrefix(Hex.encode(ours.bytes)) else {
            throw BenchError("SM3 of the bench file differs from openssl's: \(opensslDigest)")
        }
        row("hash 256 MiB: openssl dgst -sm3 (MB/s)", Double(size) / opensslBest / 1e6, nil)
        row("hash 256 MiB: ukey SM3, as Measure does (MB/s)", Double(size) / oursBest / 1e6, opensslBest / oursBest)
        print(
            String(
                format: "\ngoal: SM3 hashing at most 1.10x openssl dgst -sm3's time: %@ (%.2fx)",
                oursBest <= opensslBest * 1.10 ? "met" : "NOT met",
                oursBest / opensslBest
            )
        )

        // Measured by scripts/bench.sh just before (openssl speed cannot run as our child: it times
        // itself with SIGALRM, which Foundation's Process leaves blocked in its children).
        let fields = (ProcessInfo.processInfo.environment["OPENSSL_SM2"] ?? "").split(separator: " ").compactMap {
            Double($0)
        }
        guard fields.count == 2 else {
            throw BenchError(
                "run through 'make bench': OPENSSL_SM2 (openssl speed -elapsed sm2's sign/s and verify/s) is not set"
            )
        }
        let (opensslSign, opensslVerify) = (fields[0], fields[1])
        let key = try SM2PrivateKey()
        let publicKey = try key.publicKey
        let message = Array("ukey-v1 quote".utf8)
        let signature = try key.signature(for: message)
        let signRate = try rate(seconds: 3) { _ = try key.signature(for: message) }
        let verifyRate = try rate(seconds: 3) {
            guard publicKey.isValidSignature(signature, for: message) else {
                throw BenchError("an SM2 signature did not verify")
            }
        }
        print("")
        row("SM2 sign: openssl speed", opensslSign, nil)
        row("SM2 sign: ukey (SM3 of Z_A || message, the ID set)", signRate, signRate / opensslSign)
        row("SM2 verify: openssl speed", opensslVerify, nil)
        row("SM2 verify: ukey", verifyRate, verifyRate / opensslVerify)
        print("  (openssl speed signs a ready digest; ukey's figure includes Z_A and the SM3 of the message)")
    }

    static func rate(seconds: Double, _ body: () throws -> Void) throws -> Double {
        let start = Date()
        var count = 0
        while Date().timeIntervalSince(start) < seconds {
            for _ in 0..<50 { try body() }
            count += 50
        }
        return Double(count) / Date().timeIntervalSince(start)
    }

    static func runTool(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("\(path) \(arguments.joined(separator: " ")) failed")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
