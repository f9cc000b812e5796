import UkeyCodec

/// The field readers and writers of the few messages converted by hand (the exec and boot
/// paths'), with the coder's rules: a NUL byte, a wrong type or a missing field is
/// `InvalidParameter` naming it; an absent optional is left out, and null reads as absent.
public enum WireField {
    public static func string(_ fields: [String: JSONValue], _ key: String) throws(APIError) -> String {
        guard let value = try optionalString(fields, key) else { throw .invalidParameter(key) }
        return value
    }

    public static func optionalString(_ fields: [String: JSONValue], _ key: String) throws(APIError) -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let value)? where !value.utf8.contains(0): return value
        default: throw .invalidParameter(key)
        }
    }

    public static func int(_ fields: [String: JSONValue], _ key: String) throws(APIError) -> Int {
        guard let value = fields[key]?.intValue else { throw .invalidParameter(key) }
        return value
    }

    public static func bool(_ fields: [String: JSONValue], _ key: String) throws(APIError) -> Bool {
        guard case .bool(let value)? = fields[key] else { throw .invalidParameter(key) }
        return value
    }

    public static func set(_ fields: inout [String: JSONValue], _ key: String, _ value: String?) {
        if let value { fields[key] = .string(value) }
    }
}
