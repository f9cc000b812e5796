/// An error reply: a stable, fully qualified name and its parameters (varlink.org, "Errors").
public struct VarlinkError: Error, Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let parameters: [String: JSONValue]

    public init(_ name: String, _ parameters: [String: JSONValue] = [:]) {
        self.name = name
        self.parameters = parameters
    }

    public var description: String {
        parameters.isEmpty
            ? name
            : "\(name) \(parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
    }

    // The standard errors of org.varlink.service.
    public static func interfaceNotFound(_ interface: String) -> VarlinkError {
        VarlinkError("org.varlink.service.InterfaceNotFound", ["interface": .string(interface)])
    }
    public static func methodNotFound(_ method: String) -> VarlinkError {
        VarlinkError("org.varlink.service.MethodNotFound", ["method": .string(method)])
    }
    public static func invalidParameter(_ parameter: String) -> VarlinkError {
        VarlinkError("org.varlink.service.InvalidParameter", ["parameter": .string(parameter)])
    }
    public static func permissionDenied() -> VarlinkError {
        VarlinkError("org.varlink.service.PermissionDenied")
    }

    /// Bytes that are not a varlink message. ukeyd answers with this and closes the connection.
    public static func protocolError(_ reason: String) -> VarlinkError {
        VarlinkError("io.ukey.ProtocolError", ["reason": .string(reason)])
    }
}
