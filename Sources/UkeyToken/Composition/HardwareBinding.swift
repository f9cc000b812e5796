/// The identity of hardware a token is bound to (a card: its serial and its keys), as text an
/// operator can compare. Recorded when the token is initialised and checked at every open.
public struct HardwareBinding: Sendable, Hashable {
    /// What it is ("card").
    public let name: String
    /// Who it is ("serial 12345678, keys 1f2e...").
    public let identity: String

    public init(name: String, identity: String) {
        self.name = name
        self.identity = identity
    }
}
