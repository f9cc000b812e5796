import Foundation
import Testing
import UkeySM
import UkeyTesting

@Suite("SM2 signatures, always with an explicit distinguishing ID")
struct SM2Tests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    static let message = Array("ukey-v1 quote: the registers as they stand".utf8)

    @Test("sign and verify; another ID, another message or another key does not verify; keys survive PEM and DER")
    func roundTrip() throws {
        let key = try SM2PrivateKey()
        let signature = try key.signature(for: Self.message)
        let publicKey = try key.publicKey
        #expect(publicKey.isValidSignature(signature, for: Self.message))
        #expect(publicKey.isValidSignature(signature, for: Self.message, id: SM2.defaultID))
        #expect(!publicKey.isValidSignature(signature, for: Self.message, id: []))
        #expect(!publicKey.isValidSignature(signature, for: Self.message, id: Array("ALICE123@YAHOO.COM".utf8)))
        #expect(!publicKey.isValidSignature(signature, for: Self.message + [0]))
        #expect(!(try SM2PrivateKey().publicKey).isValidSignature(signature, for: Self.message))
        let named = try key.signature(for: Self.message, id: Array("ukey-host-7".utf8))
        #expect(publicKey.isValidSignature(named, for: Self.message, id: Array("ukey-host-7".utf8)))
        #expect(!publicKey.isValidSignature(named, for: Self.message))

        let again = try SM2PrivateKey(pemRepresentation: key.pemRepresentation)
        #expect(try again.publicKey == publicKey)
        #expect(try SM2PublicKey(pemRepresentation: publicKey.pemRepresentation) == publicKey)
        #expect(try SM2PublicKey(rawRepresentation: publicKey.rawRepresentation) == publicKey)
        #expect(publicKey.rawRepresentation.count == 64)
    }

    @Test("garbage keys and signatures are refused with a reason, never a crash; a P-256 key is not an SM2 key")
    func garbage() throws {
        #expect(throws: SMError.self) { try SM2PublicKey(rawRepresentation: [UInt8](repeating: 0, count: 64)) }
        #expect(throws: SMError.self) { try SM2PublicKey(rawRepresentation: [UInt8](repeating: 7, count: 63)) }
        for bytes in [[], [0x30], [UInt8](repeating: 0x41, count: 500)] as [[UInt8]] {
            #expect(throws: SMError.self) { try SM2PublicKey(derRepresentation: bytes) }
            #expect(throws: SMError.self) { try SM2PrivateKey(derRepresentation: bytes) }
        }
        let p256 = try ExternalTool("openssl").run([
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        ])
        #expect(throws: SMError(.malformed, "the private key is not an SM2 key")) {
            try SM2PrivateKey(pemRepresentation: p256.stdout)
        }
        // A PKCS#8 key whose public point was changed (the fuzzer's first finding): refused, not a
        // key that signs with one scalar and names another point.
        var mismatched = try SM2PrivateKey().derRepresentation
        mismatched[mismatched.count - 1] ^= 0x01
        #expect { try SM2PrivateKey(derRepresentation: mismatched) } throws: { error in
            "\(error)".contains("does not hold together") || "\(error)".contains("not a DER private key")
        }
        let key = try SM2PrivateKey()
        let publicKey = try key.publicKey
        for bad in [[], [0x30, 0x00], [UInt8](repeating: 0xFF, count: 72), [UInt8](repeating: 0x30, count: 129)]
            as [[UInt8]]
        {
            #expect(!publicKey.isValidSignature(bad, for: Self.message))
        }
    }

    @Test(
        "openssl verifies ukey's signature with -sigopt distid, and ukey verifies openssl's; with the ID left out, openssl 3.0 signs over an empty ID, which ukey's default does not accept"
    )
    func interopWithOpenSSL() throws {
        let directory = try TemporaryDirectory("sm2")
        let openssl = ExternalTool("openssl")
        let key = try SM2PrivateKey()
        try directory.write("key.pem", Array(key.pemRepresentation.utf8))
        try directory.write("pub.pem", Array(try key.publicKey.pemRepresentation.utf8))
        try directory.write("msg", Self.message)
        try directory.write("ours.sig", try key.signature(for: Self.message))
        let verified = try openssl.run([
            "dgst", "-sm3", "-verify", directory.file("pub.pem"), "-sigopt", "distid:1234567812345678", "-signature",
            directory.file("ours.sig"), directory.file("msg"),
        ])
        #expect(verified.stdout.contains("Verified OK"), "\(verified.stdout)\(verified.stderr)")

        let signed = try openssl.run([
            "dgst", "-sm3", "-sign", directory.file("key.pem"), "-sigopt", "distid:1234567812345678", "-out",
            directory.file("theirs.sig"), directory.file("msg"),
        ])
        #expect(signed.status == 0, "\(signed.stderr)")
        let theirs = Array(try Data(contentsOf: URL(fileURLWithPath: directory.file("theirs.sig"))))
        #expect(try key.publicKey.isValidSignature(theirs, for: Self.message))

        // A key openssl made loads, and its signatures verify.
        let generated = try openssl.run(["genpkey", "-algorithm", "SM2"])
        let imported = try SM2PrivateKey(pemRepresentation: generated.stdout)
        #expect(try imported.publicKey.isValidSignature(try imported.signature(for: Self.message), for: Self.message))

        // Why the ID is always explicit: without -sigopt, openssl 3.0 uses an empty ID.
        let implicit = try openssl.run([
            "dgst", "-sm3", "-sign", directory.file("key.pem"), "-out", directory.file("implicit.sig"),
            directory.file("msg"),
        ])
        #expect(implicit.status == 0)
        let implicitSignature = Array(try Data(contentsOf: URL(fileURLWithPath: directory.file("implicit.sig"))))
        #expect(!(try key.publicKey.isValidSignature(implicitSignature, for: Self.message)))
        #expect(try key.publicKey.isValidSignature(implicitSignature, for: Self.message, id: []))
    }

    @Test("gmssl (PyPI, pure Python) verifies ukey's signatures, and ukey verifies gmssl's, with the default ID")
    func interopWithGMSSL() throws {
        // gmssl strips every leading '0' and '4' of a public key that starts with "04": keys whose X starts so are skipped.
        var key = try SM2PrivateKey()
        while Self.hex(try key.publicKey.rawRepresentation).first.map({ "04".contains($0) }) == true {
            key = try SM2PrivateKey()
        }
        let publicHex = Self.hex(try key.publicKey.rawRepresentation)
        let privateHex = try Self.privateScalar(key)
        let ours = try key.signature(for: Self.message)
        let script = """
            import sys
            from gmssl import sm2
            private_key, public_key, message, ours = sys.argv[1:5]
            crypt = sm2.CryptSM2(private_key=private_key, public_key=public_key, asn1=True)
            print("verified" if crypt.verify_with_sm3(ours, bytes.fromhex(message)) else "refused")
            print(crypt.sign_with_sm3(bytes.fromhex(message)))
            """
        let result = try ExternalTool("python3").run([
            "-c", script, privateHex, publicHex, Self.hex(Self.message), Self.hex(ours),
        ])
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "verified", "\(result.stdout)\(result.stderr)")
        let theirs = try #require(lines.count > 1 ? Data(hexString: lines[1]) : nil)
        #expect(try key.publicKey.isValidSignature(Array(theirs), for: Self.message))
        #expect(!(try key.publicKey.isValidSignature(Array(theirs), for: Self.message, id: [])))
    }

    /// The private scalar d, from the PKCS#8 DER (the OCTET STRING of 32 bytes after `04 20`).
    static func privateScalar(_ key: SM2PrivateKey) throws -> String {
        let der = key.derRepresentation
        for index in 0..<(der.count - 34) where der[index] == 0x04 && der[index + 1] == 0x20 && der[index + 2] != 0x30 {
            return hex(Array(der[(index + 2)..<(index + 34)]))
        }
        throw SMError(.malformed, "no private scalar in the DER")
    }

    @Test(
        "100,000 operations (hashes, key imports, signatures, verifications, garbage) leave the resident memory flat: every OpenSSL object is freed"
    )
    func noLeaks() throws {
        // In a process of its own: this runner's RSS moves with every test running beside it.
        let result = try ExternalTool.run(PackagePaths.builtProduct("ukey-testhelper"), ["sm-operations", "100000"])
        let numbers = result.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        try #require(result.status == 0 && numbers.count == 2, "\(result.stdout)\(result.stderr)")
        #expect(numbers[0] > 0)
        #expect(
            numbers[1] - numbers[0] < 8192,
            "resident memory grew by \(numbers[1] - numbers[0]) KiB over 100,000 operations"
        )
    }
}

extension Data {
    init?(hexString: String) {
        var bytes: [UInt8] = []
        var iterator = hexString.utf8.makeIterator()
        while let high = iterator.next() {
            guard let low = iterator.next(), let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
        }
        self.init(bytes)
    }
}
