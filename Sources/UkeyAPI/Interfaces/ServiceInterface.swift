/// `org.varlink.service`: introspection, for generic varlink clients.
public enum VarlinkService {
    /// The standard introspection interface every varlink service implements.
    public static let interface = APIInterface(
        name: "org.varlink.service",
        header: """
            # The Varlink Service Interface is provided by every varlink service. It
            # describes the service and the interfaces it implements.
            interface org.varlink.service
            """,
        methods: [GetInfo.self, GetInterfaceDescription.self],
        errors: """
            # The requested interface was not found.
            error InterfaceNotFound (interface: string)

            # The requested method was not found
            error MethodNotFound (method: string)

            # The interface defines the requested method, but the service does not
            # implement it.
            error MethodNotImplemented (method: string)

            # One of the passed parameters is invalid.
            error InvalidParameter (parameter: string)

            # Client is denied access
            error PermissionDenied ()

            # Method is expected to be called with 'more' set to true, but wasn't
            error ExpectedMore ()
            """
    )
}
