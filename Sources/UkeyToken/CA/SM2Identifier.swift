import UkeySM

/// The SM2 distinguishing ID as a person writes it (`[token] sm2-id`, `--sm2-id`): printable
/// ASCII, 1-64 characters (GM/T 0009 signs over its bit length in two bytes; ukey bounds it far
/// below that). Always passed explicitly: OpenSSL 3.0 signs over an empty ID when none is given.
public enum SM2Identifier {
    public static let defaultText = String(decoding: SM2.defaultID, as: UTF8.self)

    public static func bytes(_ text: String) throws(TokenError) -> [UInt8] {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count), bytes.allSatisfy({ (0x20...0x7e).contains($0) }) else {
            throw TokenError(
                .invalidArgument,
                "the SM2 ID must be 1-64 printable ASCII characters, such as the default \(defaultText)"
            )
        }
        return bytes
    }
}
