import UkeyAPI
import UkeyCodec

/// The shape of a message as the IDL says it and as the Swift type reads it, so the two can be
/// compared field by field.
indirect enum Shape: Equatable, CustomStringConvertible {
    case string, int, bool, float
    /// A free-form object (`object` in the IDL; `[String: JSONValue]` in Swift).
    case object
    case structure([String: Field])
    case array(Shape)
    case map(Shape)

    struct Field: Equatable, CustomStringConvertible {
        var shape: Shape
        var optional: Bool
        var description: String { (optional ? "?" : "") + shape.description }
    }

    var description: String {
        switch self {
        case .string: "string"
        case .int: "int"
        case .bool: "bool"
        case .float: "float"
        case .object: "object"
        case .array(let element): "[]" + element.description
        case .map(let value): "[string]" + value.description
        case .structure(let fields):
            "(" + fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + ")"
        }
    }
}

/// Reads a `Decodable` type's shape by decoding it from nothing: every field it asks for is
/// recorded with the type it asks for, and whether it asked for it as optional.
enum ShapeProbe {
    static func shape<T: Decodable>(of type: T.Type) throws -> Shape {
        let recorder = Recorder()
        _ = try T(from: ProbeDecoder(recorder: recorder, codingPath: []))
        return recorder.shape
    }

    /// What one value turned out to be, filled in as the type decodes itself.
    final class Recorder {
        var shape: Shape = .structure([:])
        var fields: [String: Shape.Field] = [:]
        var isStructure = false
    }
}

private struct ProbeDecoder: Decoder {
    let recorder: ShapeProbe.Recorder
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        recorder.isStructure = true
        recorder.shape = .structure([:])
        return KeyedDecodingContainer(ProbeKeyed<Key>(recorder: recorder, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        ProbeUnkeyed(recorder: recorder, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        ProbeSingle(recorder: recorder, codingPath: codingPath)
    }

    /// Decodes a value of `type`, returning it with its shape.
    static func probe<T: Decodable>(_ type: T.Type, at codingPath: [any CodingKey]) throws -> (T, Shape) {
        if type == JSONValue.self { return (JSONValue.null as! T, .object) }
        if type == [String: JSONValue].self { return ([:] as! T, .object) }
        let recorder = ShapeProbe.Recorder()
        let value = try T(from: ProbeDecoder(recorder: recorder, codingPath: codingPath))
        return (value, recorder.shape)
    }
}

private struct ProbeSingle: SingleValueDecodingContainer {
    let recorder: ShapeProbe.Recorder
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { false }
    func decode(_ type: Bool.Type) throws -> Bool {
        recorder.shape = .bool
        return false
    }
    func decode(_ type: String.Type) throws -> String {
        recorder.shape = .string
        return ""
    }
    func decode(_ type: Double.Type) throws -> Double {
        recorder.shape = .float
        return 0
    }
    func decode(_ type: Float.Type) throws -> Float {
        recorder.shape = .float
        return 0
    }
    func decode<T: BinaryInteger & Decodable>(integer type: T.Type) -> T {
        recorder.shape = .int
        return 0
    }
    func decode(_ type: Int.Type) throws -> Int { decode(integer: type) }
    func decode(_ type: Int8.Type) throws -> Int8 { decode(integer: type) }
    func decode(_ type: Int16.Type) throws -> Int16 { decode(integer: type) }
    func decode(_ type: Int32.Type) throws -> Int32 { decode(integer: type) }
    func decode(_ type: Int64.Type) throws -> Int64 { decode(integer: type) }
    func decode(_ type: UInt.Type) throws -> UInt { decode(integer: type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { decode(integer: type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { decode(integer: type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { decode(integer: type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { decode(integer: type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, shape) = try ProbeDecoder.probe(type, at: codingPath)
        recorder.shape = shape
        return value
    }
}

private struct ProbeKeyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let recorder: ShapeProbe.Recorder
    let codingPath: [any CodingKey]

    /// Asked only by a dictionary, never by a struct's synthesized init: one key stands for all.
    var allKeys: [Key] {
        recorder.isStructure = false
        return [Key(stringValue: "*")!]
    }

    func contains(_ key: Key) -> Bool { true }
    func decodeNil(forKey key: Key) throws -> Bool { false }

    private func note(_ key: Key, _ shape: Shape, optional: Bool) {
        if key.stringValue == "*" && !recorder.isStructure {
            recorder.shape = .map(shape)
            return
        }
        recorder.fields[key.stringValue] = Shape.Field(shape: shape, optional: optional)
        recorder.shape = .structure(recorder.fields)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let (value, shape) = try ProbeDecoder.probe(type, at: codingPath + [key])
        note(key, shape, optional: false)
        return value
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        let (value, shape) = try ProbeDecoder.probe(type, at: codingPath + [key])
        note(key, shape, optional: true)
        return value
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(Wrapped<Bool>.self, forKey: key).value }
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try decode(Wrapped<String>.self, forKey: key).value
    }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(Wrapped<Int>.self, forKey: key).value }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        try decodeIfPresent(Wrapped<Bool>.self, forKey: key)?.value
    }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        try decodeIfPresent(Wrapped<String>.self, forKey: key)?.value
    }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        try decodeIfPresent(Wrapped<Int>.self, forKey: key)?.value
    }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? {
        try decodeIfPresent(Wrapped<UInt32>.self, forKey: key)?.value
    }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? {
        try decodeIfPresent(Wrapped<UInt64>.self, forKey: key)?.value
    }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        try decodeIfPresent(Wrapped<Double>.self, forKey: key)?.value
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type,
        forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "nested containers"))
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "nested containers"))
    }
    func superDecoder() throws -> any Decoder { ProbeDecoder(recorder: recorder, codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        ProbeDecoder(recorder: recorder, codingPath: codingPath)
    }
}

/// A scalar decoded through the generic path, so it is probed like any other value.
private struct Wrapped<T: Decodable>: Decodable {
    let value: T
    init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(T.self)
    }
}

private struct ProbeUnkeyed: UnkeyedDecodingContainer {
    let recorder: ShapeProbe.Recorder
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(recorder: ShapeProbe.Recorder, codingPath: [any CodingKey]) {
        self.recorder = recorder
        self.codingPath = codingPath
    }

    /// One element, whose shape is the array's element.
    var count: Int? { 1 }
    var isAtEnd: Bool { currentIndex >= 1 }

    mutating func decodeNil() throws -> Bool { false }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, shape) = try ProbeDecoder.probe(type, at: codingPath)
        recorder.shape = .array(shape)
        currentIndex += 1
        return value
    }
    mutating func decode(_ type: String.Type) throws -> String { try decode(Wrapped<String>.self).value }
    mutating func decode(_ type: Int.Type) throws -> Int { try decode(Wrapped<Int>.self).value }
    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "nested containers"))
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "nested containers"))
    }
    mutating func superDecoder() throws -> any Decoder { ProbeDecoder(recorder: recorder, codingPath: codingPath) }
}
