/// A varlink interface: its name and its description in the varlink IDL (varlink.org,
/// "Interface Definition"), served verbatim by `org.varlink.service.GetInterfaceDescription`.
public struct VarlinkInterface: Sendable, Hashable {
    public let name: String
    public let description: String

    public init(name: String, description: String) {
        self.name = name
        self.description = description
    }

    /// The interfaces ukeyd serves, in the order GetInfo lists them.
    public static let all: [VarlinkInterface] = [service, boot, auth, runtime, token, audit, admin]
}
