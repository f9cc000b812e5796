import UkeySM

extension FuzzTarget {
    /// SM2's untrusted forms: a DER signature, SKF's signature and public-key blobs, and SM2 public
    /// and private keys in DER. The first byte picks the reader; the rest is its input.
    static let sm2 = FuzzTarget(
        name: "sm2",
        property:
            "a DER signature read as r || s writes back to the same bytes (one encoding only); an SKF blob read back writes the same blob; a public key read writes back to the same SPKI; garbage is an SMError, never a crash",
        check: { bytes throws(FuzzFailure) in
            guard let selector = bytes.first else { return }
            let input = Array(bytes.dropFirst())
            switch selector % 5 {
            case 0:
                guard let raw = try? SM2Signature.raw(fromDER: input) else { return }
                try require(raw.count == 64, "r || s of \(raw.count) bytes")
                let again = try? SM2Signature.der(fromRaw: raw)
                try require(again == input, "DER \(input) read as r || s writes back as \(again ?? [])")
            case 1:
                guard let der = try? SKFBlob.signatureDER(input) else { return }
                let again = try? SKFBlob.signatureBlob(fromDER: der)
                try require(again == input, "an SKF signature blob does not round-trip")
            case 2:
                guard let key = try? SKFBlob.publicKey(input) else { return }
                try require(SKFBlob.blob(of: key) == input, "an SKF public-key blob does not round-trip")
            case 3:
                guard let key = try? SM2PublicKey(derRepresentation: input) else { return }
                let again = try? SM2PublicKey(derRepresentation: key.derRepresentation)
                try require(again == key && key.rawRepresentation.count == 64, "an SM2 public key does not round-trip")
            default:
                guard let key = try? SM2PrivateKey(derRepresentation: input) else { return }
                let signature = try? key.signature(for: input)
                let publicKey = try? key.publicKey
                try require(
                    signature.map { publicKey?.isValidSignature($0, for: input) == true } ?? false,
                    "a private key read from DER does not sign what its public key verifies"
                )
            }
        },
        seeds: {
            let key = try? SM2PrivateKey()
            let publicKey = try? key?.publicKey
            let signature = (try? key?.signature(for: [1, 2, 3])) ?? []
            return [
                [0] + signature,
                [1] + ((try? SKFBlob.signatureBlob(fromDER: signature)) ?? []),
                [2] + (publicKey.map { SKFBlob.blob(of: $0) } ?? []),
                [3] + (publicKey?.derRepresentation ?? []),
                [4] + (key?.derRepresentation ?? []),
            ]
        }
    )
}
