/// A failure of the GM/T algorithms, with what OpenSSL said where it said anything.
public struct SMError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Bytes that are not the key, signature or blob they claim to be.
        case malformed
        /// OpenSSL refused an operation it should have done (out of memory, a library without SM2).
        case library
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
