/// A varlink interface of ukey: its methods, and its description in the varlink IDL
/// (varlink.org, "Interface Definition") as `org.varlink.service.GetInterfaceDescription`
/// serves it, put together from the interface's own lines and each method's.
public struct APIInterface: Sendable {
    public let name: String
    public let methods: [any APIMethod.Type]
    public let description: String

    public init(name: String, header: String, types: String = "", methods: [any APIMethod.Type], errors: String) {
        self.name = name
        self.methods = methods
        let parts = [header, types] + methods.map { method in method.idl } + [errors]
        description = parts.filter { !$0.isEmpty }.joined(separator: "\n\n") + "\n"
    }

    /// The interfaces ukeyd serves, in the order GetInfo lists them.
    public static let all: [APIInterface] = [
        VarlinkService.interface, Boot.interface, Auth.interface, Runtime.interface, Token.interface,
        Audit.interface, Admin.interface, Attest.interface, VTPM.interface,
    ]

    /// Every method of every interface: the method table ukeyd routes by.
    public static let allMethods: [any APIMethod.Type] = all.flatMap(\.methods)
}
