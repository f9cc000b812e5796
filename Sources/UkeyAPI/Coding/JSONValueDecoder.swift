import UkeyCodec

/// Reads a `Decodable` message from a call's (or a reply's) parameters, already parsed by the
/// strict JSON reader. What it refuses, it refuses naming the parameter: a missing field, a
/// value of the wrong type, a NUL byte in a string (no name, path or text ukey takes has one: a
/// path with one would be opened cut short and recorded whole), an integer out of range.
/// Unknown parameters are ignored, as varlink has it.
public enum JSONValueDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from object: [String: JSONValue]) throws(APIError) -> T {
        do {
            return try T(from: ValueDecoder(value: .object(object), codingPath: []))
        } catch let error as APIError {
            throw error
        } catch let error as DecodingError {
            throw .invalidParameter(Self.parameter(of: error))
        } catch {
            throw .invalidParameter("")
        }
    }

    /// The top-level parameter a decoding error is about.
    static func parameter(of error: DecodingError) -> String {
        let path: [any CodingKey]
        switch error {
        case .keyNotFound(let key, let context): path = context.codingPath + [key]
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            path = context.codingPath
        @unknown default: path = []
        }
        return path.first?.stringValue ?? ""
    }
}

private struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = value else { throw mismatch([String: JSONValue].self) }
        return KeyedDecodingContainer(ObjectContainer<Key>(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch([JSONValue].self) }
        return ArrayContainer(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func mismatch(_ type: Any.Type) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "expected \(type)"))
    }
}

extension ValueDecoder: SingleValueDecodingContainer {
    func decodeNil() -> Bool { value == .null }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let bool) = value else { throw mismatch(type) }
        return bool
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let string) = value, !string.utf8.contains(0) else { throw mismatch(type) }
        return string
    }

    func decode(_ type: Int.Type) throws -> Int {
        guard let int = value.intValue else { throw mismatch(type) }
        return int
    }

    func decode<T: BinaryInteger & Decodable>(integer type: T.Type) throws -> T {
        guard let int = value.intValue, let exact = T(exactly: int) else { throw mismatch(type) }
        return exact
    }

    func decode(_ type: Double.Type) throws -> Double {
        switch value {
        case .double(let double): return double
        case .int(let int): return Double(int)
        default: throw mismatch(type)
        }
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decode(integer: type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decode(integer: type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decode(integer: type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decode(integer: type) }
    func decode(_ type: UInt.Type) throws -> UInt { try decode(integer: type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decode(integer: type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decode(integer: type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decode(integer: type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decode(integer: type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        // A free-form value (an audit record) is taken as it is.
        if type == JSONValue.self, let value = value as? T { return value }
        return try T(from: self)
    }
}

private struct ObjectContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { object.keys.compactMap(Key.init(stringValue:)) }

    func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

    /// A field's value as a decoder of its own: for nested values only. Scalars are read in
    /// place (below), so a request's common fields cost a lookup and no allocation; the coding
    /// path is made only when something is refused.
    private func value(_ key: Key) throws -> ValueDecoder {
        guard let value = object[key.stringValue] else { throw missing(key) }
        return ValueDecoder(value: value, codingPath: codingPath + [key])
    }

    private func missing(_ key: Key) -> DecodingError {
        .keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
    }

    private func mismatch(_ key: Key, _ type: Any.Type) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath + [key], debugDescription: "expected \(type)"))
    }

    /// An absent field and a null one are the same: `?type` in the IDL.
    func decodeNil(forKey key: Key) throws -> Bool { (object[key.stringValue] ?? .null) == .null }

    private func string(_ key: Key, _ value: JSONValue) throws -> String {
        guard case .string(let string) = value, !string.utf8.contains(0) else { throw mismatch(key, String.self) }
        return string
    }

    private func int(_ key: Key, _ value: JSONValue) throws -> Int {
        guard let int = value.intValue else { throw mismatch(key, Int.self) }
        return int
    }

    private func bool(_ key: Key, _ value: JSONValue) throws -> Bool {
        guard case .bool(let bool) = value else { throw mismatch(key, Bool.self) }
        return bool
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        guard let value = object[key.stringValue] else { throw missing(key) }
        return try bool(key, value)
    }
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        guard let value = object[key.stringValue] else { throw missing(key) }
        return try string(key, value)
    }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        guard let value = object[key.stringValue] else { throw missing(key) }
        return try int(key, value)
    }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try value(key).decode(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try value(key).decode(type) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try value(key).decode(type) }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        guard let value = object[key.stringValue], value != .null else { return nil }
        return try string(key, value)
    }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        guard let value = object[key.stringValue], value != .null else { return nil }
        return try int(key, value)
    }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        guard let value = object[key.stringValue], value != .null else { return nil }
        return try bool(key, value)
    }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try decodeNil(forKey: key) ? nil : try value(key).decode(type)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type,
        forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try value(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try value(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { ValueDecoder(value: .object(object), codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try value(key) }
}

private struct ArrayContainer: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [JSONValue], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next() throws -> ValueDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "at end"))
        }
        defer { currentIndex += 1 }
        return ValueDecoder(value: items[currentIndex], codingPath: codingPath + [Index(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: String.Type) throws -> String { try next().decode(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next().decode(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

/// An array element's place in a coding path.
struct Index: CodingKey {
    let intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}
