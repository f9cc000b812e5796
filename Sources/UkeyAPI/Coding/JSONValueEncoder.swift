import UkeyCodec

/// Writes an `Encodable` message as a call's (or a reply's) parameters, for the strict JSON
/// writer. An absent optional is left out (varlink's `?type`), never written as null.
public enum JSONValueEncoder {
    public static func encode<T: Encodable>(_ value: T) -> [String: JSONValue] {
        let box = Box()
        // Our messages throw nothing when encoded; a type that did would be a programming error
        // caught by the tests, and it is written as far as it got.
        try? value.encode(to: ValueEncoder(box: box, codingPath: []))
        return box.object ?? box.value.objectValue ?? [:]
    }

    /// Synthesized `Codable` never asks for a nested container; a hand-written `encode(to:)`
    /// that did would lose what it wrote, so it stops instead (the tests encode every message).
    static let noNesting = "ukey's messages encode nested values as values, not nested containers"

    /// One value being written: containers write into the box their encoder was given. An
    /// object's or an array's elements are kept apart while they are written, so each field is
    /// added in place rather than the whole value rebuilt.
    final class Box {
        var value: JSONValue = .null
        var object: [String: JSONValue]?
        var array: [JSONValue]?

        /// What was written.
        var result: JSONValue {
            if let object { return .object(object) }
            if let array { return .array(array) }
            return value
        }
    }
}

private struct ValueEncoder: Encoder {
    let box: JSONValueEncoder.Box
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if box.object == nil { box.object = [:] }
        return KeyedEncodingContainer(ObjectContainer<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if box.array == nil { box.array = [] }
        return ArrayContainer(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { self }

    /// The JSON form of one value: scalars directly, anything else through its `encode(to:)`.
    static func value<T: Encodable>(of value: T, at codingPath: [any CodingKey]) throws -> JSONValue {
        switch value {
        case let string as String: return .string(string)
        case let int as Int: return .int(int)
        case let bool as Bool: return .bool(bool)
        case let json as JSONValue: return json
        default:
            let box = JSONValueEncoder.Box()
            try value.encode(to: ValueEncoder(box: box, codingPath: codingPath))
            return box.result
        }
    }
}

extension ValueEncoder: SingleValueEncodingContainer {
    func encodeNil() { box.value = .null }
    func encode(_ value: Bool) { box.value = .bool(value) }
    func encode(_ value: String) { box.value = .string(value) }
    func encode(_ value: Double) { box.value = .double(value) }
    func encode(_ value: Float) { box.value = .double(Double(value)) }
    func encode(_ value: Int) { box.value = .int(value) }
    func encode(_ value: Int8) { box.value = .int(Int(value)) }
    func encode(_ value: Int16) { box.value = .int(Int(value)) }
    func encode(_ value: Int32) { box.value = .int(Int(value)) }
    func encode(_ value: Int64) { box.value = .int(Int(value)) }
    func encode(_ value: UInt) { box.value = .int(Int(truncatingIfNeeded: value)) }
    func encode(_ value: UInt8) { box.value = .int(Int(value)) }
    func encode(_ value: UInt16) { box.value = .int(Int(value)) }
    func encode(_ value: UInt32) { box.value = .int(Int(value)) }
    func encode(_ value: UInt64) { box.value = .int(Int(truncatingIfNeeded: value)) }
    func encode<T: Encodable>(_ value: T) throws { box.value = try Self.value(of: value, at: codingPath) }
}

private struct ObjectContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: JSONValueEncoder.Box
    let codingPath: [any CodingKey]

    private func set(_ value: JSONValue, _ key: Key) {
        box.object?[key.stringValue] = value
    }

    mutating func encodeNil(forKey key: Key) { set(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) { set(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) { set(.string(value), key) }
    mutating func encode(_ value: Int, forKey key: Key) { set(.int(value), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) { set(.int(Int(truncatingIfNeeded: value)), key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        set(try ValueEncoder.value(of: value, at: codingPath + [key]), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type,
        forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        preconditionFailure(JSONValueEncoder.noNesting)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        preconditionFailure(JSONValueEncoder.noNesting)
    }

    mutating func superEncoder() -> any Encoder { ValueEncoder(box: box, codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { ValueEncoder(box: box, codingPath: codingPath) }
}

private struct ArrayContainer: UnkeyedEncodingContainer {
    let box: JSONValueEncoder.Box
    let codingPath: [any CodingKey]

    var count: Int { box.array?.count ?? 0 }

    private func append(_ value: JSONValue) {
        box.array?.append(value)
    }

    mutating func encodeNil() { append(.null) }
    mutating func encode(_ value: String) { append(.string(value)) }
    mutating func encode(_ value: Int) { append(.int(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        append(try ValueEncoder.value(of: value, at: codingPath + [Index(count)]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<
        NestedKey
    > {
        preconditionFailure(JSONValueEncoder.noNesting)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        preconditionFailure(JSONValueEncoder.noNesting)
    }

    mutating func superEncoder() -> any Encoder { ValueEncoder(box: box, codingPath: codingPath) }
}
