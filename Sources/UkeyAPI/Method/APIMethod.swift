import UkeyCodec

/// One method of ukey's API, as both ends of the socket see it: its name, who may call it, its
/// typed request and reply, its text in the interface description and what a call of it leaves
/// in the audit log. ukeyd answers it (its services conform it to their own protocol); every
/// client calls it through `VarlinkConnection.call(_:_:)`. A new method is a file like the
/// others and a line in its interface's `methods`.
public protocol APIMethod: Sendable {
    associatedtype Request: APIMessage
    associatedtype Reply: APIMessage
    /// Fully qualified, as the IDL spells it: `io.ukey.Boot.Measure`.
    static var name: String { get }
    /// nil: anyone who can connect.
    static var role: Role? { get }
    /// The method's lines in its interface's description: its comment and its `method` line.
    static var idl: String { get }
    /// The records a call leaves in the audit log (none by default: a read leaves nothing).
    /// Secrets (PINs) are never copied into them.
    static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord]
}

extension APIMethod {
    public static func audit(_ request: Request, _ outcome: Result<Reply, APIError>) -> [AuditRecord] { [] }
}

/// A method's request or reply. What `Codable` cannot say (a name at most 64 bytes, a mode
/// from a list) `validate` says, naming the parameter; the daemon refuses a request it fails
/// before any service sees it.
///
/// Its wire form is its `Codable` one, through `JSONValueDecoder` and `JSONValueEncoder`. A
/// message on the exec path (CheckExec's), read and written on every exec a guard asks about,
/// may write its conversion by hand, in its own file; a test holds it equal to the `Codable` one.
public protocol APIMessage: Codable, Sendable, Equatable {
    func validate() throws(APIError)
    /// The message read from a call's (or a reply's) parameters, and checked.
    init(wire parameters: [String: JSONValue]) throws(APIError)
    /// The message as parameters.
    var wire: [String: JSONValue] { get }
}

extension APIMessage {
    public func validate() throws(APIError) {}

    public init(wire parameters: [String: JSONValue]) throws(APIError) {
        self = try JSONValueDecoder.decode(Self.self, from: parameters)
        try validate()
    }

    public var wire: [String: JSONValue] { JSONValueEncoder.encode(self) }
}

/// The request of a method that takes no parameters, and the reply of one that answers nothing
/// but success.
public struct Empty: APIMessage, Equatable {
    public init() {}
}

/// Who may call what, decided by ukeyd from the peer's credentials (SO_PEERCRED).
public enum Role: String, Sendable, Hashable, CaseIterable {
    /// Provisioning: uid 0 or a member of the admin group.
    case admin
    /// The hypervisor side (libvirt hook, host boot script): uid 0 or the hypervisor group.
    case hypervisor
    /// Anyone allowed to connect to the socket.
    case user
}
