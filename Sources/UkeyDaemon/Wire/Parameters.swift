import Foundation
import UkeyCore
import UkeyVarlink

/// A call's parameters as the wire layer reads them into typed requests; anything missing, of
/// the wrong type or too long is `invalidParameter` naming the parameter.
struct Parameters {
    let values: [String: JSONValue]

    init(_ values: [String: JSONValue]) {
        self.values = values
    }

    func string(_ name: String, maxLength: Int = 4096) throws(ServiceError) -> String {
        guard let value = try optionalString(name, maxLength: maxLength) else { throw .invalidParameter(name) }
        return value
    }

    func optionalString(_ name: String, maxLength: Int = 4096) throws(ServiceError) -> String? {
        switch values[name] {
        case nil, .null?: return nil
        // A NUL byte is in no name, path or text ukey takes: a path with one would be opened
        // cut short at it and recorded whole.
        case .string(let value)? where value.utf8.count <= maxLength && !value.utf8.contains(0): return value
        default: throw .invalidParameter(name)
        }
    }

    func int(_ name: String) throws(ServiceError) -> Int {
        guard let value = values[name]?.intValue else { throw .invalidParameter(name) }
        return value
    }

    func optionalInt(_ name: String) throws(ServiceError) -> Int? {
        switch values[name] {
        case nil, .null?: return nil
        case let value?:
            guard let int = value.intValue else { throw .invalidParameter(name) }
            return int
        }
    }

    func optionalInts(_ name: String) throws(ServiceError) -> [Int]? {
        try optionalArray(name) { $0.intValue }
    }

    func optionalStrings(_ name: String) throws(ServiceError) -> [String]? {
        try optionalArray(name) { $0.stringValue }
    }

    /// An optional array whose every element `element` reads; any element it cannot read makes
    /// the whole parameter invalid.
    private func optionalArray<T>(_ name: String, _ element: (JSONValue) -> T?) throws(ServiceError) -> [T]? {
        switch values[name] {
        case nil, .null?: return nil
        case .array(let items)?:
            var out: [T] = []
            out.reserveCapacity(items.count)
            for item in items {
                guard let value = element(item) else { throw .invalidParameter(name) }
                out.append(value)
            }
            return out
        default: throw .invalidParameter(name)
        }
    }

    func base64(_ name: String, maxLength: Int = 1 << 20) throws(ServiceError) -> [UInt8] {
        guard let data = Data(base64Encoded: try string(name, maxLength: maxLength * 2)) else {
            throw .invalidParameter(name)
        }
        return Array(data)
    }

    func digest(_ name: String) throws(ServiceError) -> Digest? {
        guard let text = try optionalString(name, maxLength: 200) else { return nil }
        do {
            return try Digest(parsing: text)
        } catch {
            throw .invalidParameter(name)
        }
    }

    func optionalBool(_ name: String) throws(ServiceError) -> Bool? {
        switch values[name] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw .invalidParameter(name)
        }
    }

    func array(_ name: String) throws(ServiceError) -> [JSONValue] {
        guard let items = values[name]?.arrayValue else { throw .invalidParameter(name) }
        return items
    }
}

extension Array where Element == UInt8 {
    var base64: String { Data(self).base64EncodedString() }
}
