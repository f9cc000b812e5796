import Testing
import UkeySM

@Suite("SKF (GM/T 0016) blobs map onto ukey's SM2 forms")
struct SKFBlobTests {
    static let message = Array("a container's signing key".utf8)

    @Test(
        "an ECCPUBLICKEYBLOB (BitLen 256, X and Y right-aligned in 64-byte fields) is the key; an ECCSIGNATUREBLOB is the signature"
    )
    func roundTrip() throws {
        let key = try SM2PrivateKey()
        let publicKey = try key.publicKey
        let blob = SKFBlob.blob(of: publicKey)
        #expect(blob.count == 132 && blob[0..<4] == [0x00, 0x01, 0x00, 0x00])
        #expect(
            blob[4..<36].allSatisfy { $0 == 0 } && Array(blob[36..<68]) == Array(publicKey.rawRepresentation[0..<32])
        )
        #expect(
            blob[68..<100].allSatisfy { $0 == 0 }
                && Array(blob[100..<132]) == Array(publicKey.rawRepresentation[32..<64])
        )
        #expect(try SKFBlob.publicKey(blob) == publicKey)

        for _ in 0..<50 {
            let der = try key.signature(for: Self.message)
            let skf = try SKFBlob.signatureBlob(fromDER: der)
            #expect(skf.count == 128 && skf[0..<32].allSatisfy { $0 == 0 } && skf[64..<96].allSatisfy { $0 == 0 })
            // A token's signature, as SKF_ECCSignData hands it over, verifies after conversion.
            #expect(publicKey.isValidSignature(try SKFBlob.signatureDER(skf), for: Self.message))
            #expect(try SKFBlob.signatureDER(skf) == der)
            #expect(try SM2Signature.der(fromRaw: SM2Signature.raw(fromDER: der)) == der)
        }
    }

    @Test("an SKF-shaped vector: r and s with leading zero bytes and high bits set encode as minimal DER")
    func vector() throws {
        let r = [UInt8](repeating: 0, count: 3) + [UInt8](repeating: 0x9A, count: 29)
        let s = [0x7F] + [UInt8](repeating: 0x01, count: 31)
        let blob = [UInt8](repeating: 0, count: 32) + r + [UInt8](repeating: 0, count: 32) + s
        let der = try SKFBlob.signatureDER(blob)
        #expect(der == [0x30, 0x42, 0x02, 0x1E, 0x00] + [UInt8](repeating: 0x9A, count: 29) + [0x02, 0x20] + s)
        #expect(try SKFBlob.signatureBlob(fromDER: der) == blob)
    }

    @Test("wrong sizes, BitLen, padding, and DER that is not minimal or has trailing bytes are refused")
    func refusals() throws {
        let key = try SM2PrivateKey().publicKey
        var blob = SKFBlob.blob(of: key)
        #expect(throws: SMError.self) { try SKFBlob.publicKey(Array(blob.dropLast())) }
        blob[0] = 0x00
        blob[1] = 0x02
        #expect(throws: SMError.self) { try SKFBlob.publicKey(blob) }
        blob = SKFBlob.blob(of: key)
        blob[5] = 1
        #expect(throws: SMError.self) { try SKFBlob.publicKey(blob) }
        #expect(throws: SMError.self) { try SKFBlob.signatureDER([UInt8](repeating: 0, count: 127)) }
        #expect(throws: SMError.self) { try SKFBlob.signatureDER([UInt8](repeating: 0, count: 128)) }  // r = s = 0
        let good: [UInt8] = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]
        #expect(try SM2Signature.raw(fromDER: good).count == 64)
        for bad: [UInt8] in [
            [0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01],  // r not minimal
            [0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01],  // r negative
            good + [0x00],  // trailing byte
            [0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],  // not a SEQUENCE
            [0x30, 0x06, 0x02, 0x01, 0x01, 0x04, 0x01, 0x01],  // s not an INTEGER
        ] {
            #expect(throws: SMError.self) { try SM2Signature.raw(fromDER: bad) }
        }
    }
}
