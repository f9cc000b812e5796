/// What the hypervisor side refuses, with a reason a person can act on.
public struct HypervisorError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
