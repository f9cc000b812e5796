import CLibCrypto

/// One block of the card management key's cipher (PIV key reference 9B), through the system's
/// libcrypto: swift-crypto has no 3DES, and PIV's challenge-response is raw ECB on one block.
public enum ManagementKeyAlgorithm: UInt8, Codable, Sendable, CaseIterable {
    case tripleDES = 0x03
    case aes128 = 0x08
    case aes192 = 0x0A
    case aes256 = 0x0C

    public var keyLength: Int {
        switch self {
        case .tripleDES: 24
        case .aes128: 16
        case .aes192: 24
        case .aes256: 32
        }
    }

    public var blockLength: Int { self == .tripleDES ? 8 : 16 }

    public var name: String {
        switch self {
        case .tripleDES: "3DES"
        case .aes128: "AES-128"
        case .aes192: "AES-192"
        case .aes256: "AES-256"
        }
    }
}

public struct ManagementKeyCipherError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

public enum ManagementKeyCipher {
    /// Encrypts one block with `key` (ECB, no padding).
    public static func encrypt(
        _ block: [UInt8],
        key: [UInt8],
        algorithm: ManagementKeyAlgorithm
    ) throws(ManagementKeyCipherError) -> [UInt8] {
        guard key.count == algorithm.keyLength, block.count == algorithm.blockLength else {
            throw ManagementKeyCipherError(
                description:
                    "\(algorithm.name) takes a \(algorithm.keyLength)-byte key and a \(algorithm.blockLength)-byte block"
            )
        }
        guard let context = EVP_CIPHER_CTX_new() else {
            throw ManagementKeyCipherError(description: "libcrypto: out of memory")
        }
        defer { EVP_CIPHER_CTX_free(context) }
        let cipher =
            switch algorithm {
            case .tripleDES: EVP_des_ede3_ecb()
            case .aes128: EVP_aes_128_ecb()
            case .aes192: EVP_aes_192_ecb()
            case .aes256: EVP_aes_256_ecb()
            }
        var output = [UInt8](repeating: 0, count: block.count * 2)
        var written: Int32 = 0
        var final: Int32 = 0
        let ok = key.withUnsafeBufferPointer { keyBytes in
            EVP_EncryptInit_ex(context, cipher, nil, keyBytes.baseAddress, nil) == 1
                && EVP_CIPHER_CTX_set_padding(context, 0) == 1
                && EVP_EncryptUpdate(context, &output, &written, block, Int32(block.count)) == 1
                && output.withUnsafeMutableBufferPointer { out in
                    out.baseAddress.map { EVP_EncryptFinal_ex(context, $0 + Int(written), &final) } ?? 0
                } == 1
        }
        guard ok, Int(written + final) == block.count else {
            ERR_clear_error()
            throw ManagementKeyCipherError(description: "libcrypto refused the \(algorithm.name) operation")
        }
        return Array(output.prefix(block.count))
    }
}
