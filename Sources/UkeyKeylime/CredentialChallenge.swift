import Crypto
import Foundation
import UkeyCodec

/// The registrar's challenge and the agent's answer: the blob is tpm2-tools' makecredential
/// file (`0xBADCC0DE`, version 1, a TPM2B_ID_OBJECT, a TPM2B_ENCRYPTED_SECRET), which the TPM
/// opens with TPM2_ActivateCredential; the answer is HMAC-SHA384 over the agent's uuid keyed by
/// the recovered secret's base64 text.
public struct CredentialChallenge: Equatable, Sendable {
    public let credential: [UInt8]
    public let encryptedSecret: [UInt8]

    public struct Malformed: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Splits the blob; untrusted bytes from the registrar, every length checked.
    public init(blob: [UInt8]) throws(Malformed) {
        guard blob.count <= 4096 else { throw Malformed(description: "the challenge is over 4096 bytes") }
        guard blob.count >= 12, blob[0..<4] == [0xBA, 0xDC, 0xC0, 0xDE] else {
            throw Malformed(description: "the challenge does not start with tpm2-tools' credential magic")
        }
        guard blob[4..<8] == [0, 0, 0, 1] else { throw Malformed(description: "the challenge is not version 1") }
        let idSize = Int(blob[8]) << 8 | Int(blob[9])
        guard idSize > 0, blob.count >= 12 + idSize else {
            throw Malformed(description: "the challenge's credential is cut short")
        }
        let secretStart = 10 + idSize
        let secretSize = Int(blob[secretStart]) << 8 | Int(blob[secretStart + 1])
        guard secretSize > 0, blob.count == secretStart + 2 + secretSize else {
            throw Malformed(description: "the challenge's encrypted secret does not end the blob")
        }
        credential = Array(blob[8..<secretStart])
        encryptedSecret = Array(blob[secretStart...])
    }

    /// The activation's proof: hex HMAC-SHA384(key: base64(secret) as text, message: uuid).
    public static func authTag(secret: [UInt8], uuid: String) -> String {
        let key = SymmetricKey(data: Array(Data(secret).base64EncodedString().utf8))
        let mac = HMAC<SHA384>.authenticationCode(for: Array(uuid.utf8), using: key)
        return Hex.encode(Array(mac))
    }
}
