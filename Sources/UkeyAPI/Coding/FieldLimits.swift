/// The bounds a request's fields are held to, named so each message's `validate` reads as a
/// list: a name (an entity, a user, a key) is at most 64 bytes, a path or free text at most 4 KiB.
public enum FieldLimits {
    public static let name = 64
    public static let text = 4096
    /// A session or ticket token.
    public static let credential = 256

    /// `value` fits in `max` bytes, else the parameter `field` is invalid.
    public static func check(_ value: String?, _ field: String, max: Int) throws(APIError) {
        if let value, value.utf8.count > max { throw .invalidParameter(field) }
    }

    /// Every element of `values` fits in `max` bytes and there are at most `count` of them.
    public static func check(_ values: [String]?, _ field: String, max: Int, count: Int) throws(APIError) {
        guard let values else { return }
        guard values.count <= count, values.allSatisfy({ $0.utf8.count <= max }) else {
            throw .invalidParameter(field)
        }
    }

    /// `value` is one of `allowed`.
    public static func check(_ value: String?, _ field: String, in allowed: Set<String>) throws(APIError) {
        if let value, !allowed.contains(value) { throw .invalidParameter(field) }
    }
}
