import UkeyToken

extension FuzzTarget {
    /// What reaches ukeyd's vTPM CA from swtpm_setup (through `ukey-vtpm-certs`): the EK's text
    /// (an RSA modulus in hex, or `x=,y=,id=` of an EC point) and the TPM's description.
    static let vtpmEndorsementKey = FuzzTarget(
        name: "vtpm-ek",
        property:
            "an EK text is refused with a reason, or read as an RSA modulus of 2048, 3072 or 4096 bits with its top bit set, or as a P-256/P-384 point of the curve's size; a TPM description is taken only when printable and bounded",
        check: { bytes throws(FuzzFailure) in
            let text = String(decoding: bytes, as: UTF8.self)
            switch Result(catching: { () throws(TokenError) in try VTPMEndorsementKey(parsing: text) }) {
            case .success(.rsa(let modulus)):
                try require([256, 384, 512].contains(modulus.count), "a \(modulus.count)-byte modulus was taken")
                try require(modulus[0] & 0x80 != 0, "a modulus shorter than its size was taken")
            case .success(.ecc(let curve, let x, let y)):
                let size = curve == .p256 ? 32 : 48
                try require(x.count == size && y.count == size, "a point of the wrong size was taken")
            case .failure(let error):
                try require(!error.reason.isEmpty, "a refusal without a reason")
            }
            let request = VTPMCertificateRequest(
                kind: .endorsement,
                vm: "office",
                endorsementKey: .rsa(modulus: [0x80] + [UInt8](repeating: 1, count: 255)),
                tpmManufacturer: text,
                tpmModel: "swtpm",
                tpmVersion: "id:20191023"
            )
            if request.problem == nil {
                try require(
                    !text.isEmpty && text.utf8.count <= VTPMCertificateRequest.maxAttributeLength
                        && text.unicodeScalars.allSatisfy { (0x21...0x7e).contains($0.value) },
                    "an unprintable or unbounded TPM description was taken"
                )
            }
        },
        seeds: {
            [
                Array(String(repeating: "c3", count: 256).utf8),
                Array(
                    "x=\(String(repeating: "6b", count: 32)),y=\(String(repeating: "4f", count: 32)),id=secp256r1".utf8
                ),
                Array("id:00001014".utf8),
                Array("x=1,y=2,id=secp384r1".utf8),
            ]
        }
    )
}
