import Foundation

/// A varlink call (varlink.org, "Protocol": method call object).
public struct VarlinkCall: Sendable, Hashable {
    /// Fully qualified: `interface.Method`, e.g. `io.ukey.Boot.Measure`.
    public var method: String
    public var parameters: [String: JSONValue]
    /// The caller wants no reply.
    public var oneway: Bool
    /// The caller accepts several replies (`continues: true` on all but the last).
    public var more: Bool

    public init(method: String, parameters: [String: JSONValue] = [:], oneway: Bool = false, more: Bool = false) {
        self.method = method
        self.parameters = parameters
        self.oneway = oneway
        self.more = more
    }

    /// The interface part of `method`.
    public var interface: String {
        guard let dot = method.lastIndex(of: ".") else { return "" }
        return String(method[..<dot])
    }

    /// The method name without its interface.
    public var methodName: String {
        guard let dot = method.lastIndex(of: ".") else { return method }
        return String(method[method.index(after: dot)...])
    }
}

/// A varlink reply: parameters, or an error name with its parameters.
public struct VarlinkReply: Sendable, Hashable {
    public var parameters: [String: JSONValue] { didSet { framed = nil } }
    public var error: String? { didSet { framed = nil } }
    public var continues: Bool { didSet { framed = nil } }
    /// The reply's bytes on the wire, for a reply sent many times as it is (GetInfo's): written
    /// once by `framedOnce`, forgotten by any change.
    public private(set) var framed: [UInt8]?

    public init(parameters: [String: JSONValue] = [:], error: String? = nil, continues: Bool = false) {
        self.parameters = parameters
        self.error = error
        self.continues = continues
    }

    /// This reply with its wire bytes written now, so each send only copies them.
    public func framedOnce() -> VarlinkReply {
        var reply = self
        reply.framed = VarlinkFraming.frame(VarlinkCodec.encode(self))
        return reply
    }

    /// The reply's bytes on the wire: encoded and NUL-terminated.
    public var wireBytes: [UInt8] {
        framed ?? VarlinkFraming.frame(VarlinkCodec.encode(self))
    }

    public static func == (lhs: VarlinkReply, rhs: VarlinkReply) -> Bool {
        lhs.parameters == rhs.parameters && lhs.error == rhs.error && lhs.continues == rhs.continues
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(parameters)
        hasher.combine(error)
        hasher.combine(continues)
    }

    public static func failure(_ error: VarlinkError) -> VarlinkReply {
        VarlinkReply(parameters: error.parameters, error: error.name)
    }
}

/// Encoding and decoding of single messages (without the NUL terminator).
public enum VarlinkCodec {
    /// Parses one call from one message's bytes. Untrusted: must be UTF-8 JSON, an object, with a
    /// string `method` and, if present, an object `parameters` and boolean flags.
    public static func decodeCall(_ bytes: some Collection<UInt8>) throws(VarlinkError) -> VarlinkCall {
        let object = try decodeObject(bytes)
        guard case .string(let method)? = object["method"], !method.isEmpty else {
            throw .protocolError("a call needs a string 'method'")
        }
        var parameters: [String: JSONValue] = [:]
        switch object["parameters"] {
        case nil, .null?: break
        case .object(let value)?: parameters = value
        default: throw .protocolError("'parameters' must be an object")
        }
        func flag(_ name: String) throws(VarlinkError) -> Bool {
            switch object[name] {
            case nil, .null?: return false
            case .bool(let value)?: return value
            default: throw .protocolError("'\(name)' must be true or false")
            }
        }
        let call = VarlinkCall(
            method: method,
            parameters: parameters,
            oneway: try flag("oneway"),
            more: try flag("more")
        )
        guard try !flag("upgrade") else { throw .protocolError("protocol upgrades are not supported") }
        return call
    }

    public static func decodeReply(_ bytes: some Collection<UInt8>) throws(VarlinkError) -> VarlinkReply {
        let object = try decodeObject(bytes)
        var reply = VarlinkReply()
        if case .object(let parameters)? = object["parameters"] { reply.parameters = parameters }
        if case .string(let error)? = object["error"] { reply.error = error }
        if case .bool(let continues)? = object["continues"] { reply.continues = continues }
        return reply
    }

    public static func encode(_ call: VarlinkCall) -> [UInt8] {
        var object: [String: JSONValue] = ["method": .string(call.method)]
        if !call.parameters.isEmpty { object["parameters"] = .object(call.parameters) }
        if call.oneway { object["oneway"] = true }
        if call.more { object["more"] = true }
        return encodeObject(object)
    }

    public static func encode(_ reply: VarlinkReply) -> [UInt8] {
        var object: [String: JSONValue] = ["parameters": .object(reply.parameters)]
        if let error = reply.error { object["error"] = .string(error) }
        if reply.continues { object["continues"] = true }
        return encodeObject(object)
    }

    /// Parses a JSON object from untrusted bytes (an audit line, a message).
    public static func parseObject(_ bytes: some Collection<UInt8>) throws(VarlinkError) -> [String: JSONValue] {
        try decodeObject(bytes)
    }

    static func decodeObject(_ bytes: some Collection<UInt8>) throws(VarlinkError) -> [String: JSONValue] {
        guard isUTF8(bytes) else { throw .protocolError("the message is not valid UTF-8") }
        let value: JSONValue
        do {
            value = try JSONReader.parse(bytes)
        } catch {
            throw .protocolError("the message is not valid JSON: \(error)")
        }
        guard case .object(let object) = value else { throw .protocolError("the message must be a JSON object") }
        return object
    }

    /// Whether the bytes are UTF-8. Nearly every message is ASCII, which one pass over the bytes
    /// shows; only a message with other bytes pays for the full validation.
    static func isUTF8(_ bytes: some Collection<UInt8>) -> Bool {
        let ascii =
            bytes.withContiguousStorageIfAvailable { buffer in
                buffer.allSatisfy { $0 < 0x80 }
            } ?? bytes.allSatisfy { $0 < 0x80 }
        if ascii { return true }
        return bytes.withContiguousStorageIfAvailable { String(validating: $0, as: UTF8.self) != nil }
            ?? (String(validating: Array(bytes), as: UTF8.self) != nil)
    }

    static func encodeObject(_ object: [String: JSONValue]) -> [UInt8] {
        JSONWriter.write(.object(object))
    }
}
