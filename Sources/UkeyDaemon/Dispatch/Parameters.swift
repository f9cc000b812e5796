import Foundation
import UkeyCore
import UkeyVarlink

/// Typed access to a call's parameters; anything missing or of the wrong type is
/// `org.varlink.service.InvalidParameter` naming the parameter.
struct Parameters {
    let values: [String: JSONValue]
    /// Who called: for the few methods that act with the caller's own rights (Measure by path).
    var caller: Caller?

    init(values: [String: JSONValue], caller: Caller? = nil) {
        self.values = values
        self.caller = caller
    }

    func string(_ name: String, maxLength: Int = 4096) throws(VarlinkError) -> String {
        guard let value = try optionalString(name, maxLength: maxLength) else { throw .invalidParameter(name) }
        return value
    }

    func optionalString(_ name: String, maxLength: Int = 4096) throws(VarlinkError) -> String? {
        switch values[name] {
        case nil, .null?: return nil
        case .string(let value)? where value.utf8.count <= maxLength: return value
        default: throw .invalidParameter(name)
        }
    }

    func int(_ name: String) throws(VarlinkError) -> Int {
        guard let value = values[name]?.intValue else { throw .invalidParameter(name) }
        return value
    }

    func optionalInt(_ name: String) throws(VarlinkError) -> Int? {
        switch values[name] {
        case nil, .null?: return nil
        case let value?:
            guard let int = value.intValue else { throw .invalidParameter(name) }
            return int
        }
    }

    func optionalInts(_ name: String) throws(VarlinkError) -> [Int]? {
        switch values[name] {
        case nil, .null?: return nil
        case .array(let items)?:
            var out: [Int] = []
            for item in items {
                guard let value = item.intValue else { throw .invalidParameter(name) }
                out.append(value)
            }
            return out
        default: throw .invalidParameter(name)
        }
    }

    func optionalStrings(_ name: String) throws(VarlinkError) -> [String]? {
        switch values[name] {
        case nil, .null?: return nil
        case .array(let items)?:
            var out: [String] = []
            for item in items {
                guard let value = item.stringValue else { throw .invalidParameter(name) }
                out.append(value)
            }
            return out
        default: throw .invalidParameter(name)
        }
    }

    func base64(_ name: String, maxLength: Int = 1 << 20) throws(VarlinkError) -> [UInt8] {
        guard let data = Data(base64Encoded: try string(name, maxLength: maxLength * 2)) else { throw .invalidParameter(name) }
        return Array(data)
    }

    func digest(_ name: String) throws(VarlinkError) -> Digest? {
        guard let text = try optionalString(name, maxLength: 200) else { return nil }
        do {
            return try Digest(parsing: text)
        } catch {
            throw .invalidParameter(name)
        }
    }

    func array(_ name: String) throws(VarlinkError) -> [JSONValue] {
        guard let items = values[name]?.arrayValue else { throw .invalidParameter(name) }
        return items
    }
}

extension Array where Element == UInt8 {
    var base64: String { Data(self).base64EncodedString() }
}
