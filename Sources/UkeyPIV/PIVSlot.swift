/// The four key slots of PIV (SP 800-73-4 part 1, 3.1) that ukey uses.
public enum PIVSlot: UInt8, Codable, Sendable, CaseIterable {
    /// PIV authentication: the user's login key (PIN once per session).
    case authentication = 0x9A
    /// Digital signature: ukey's quotes and audit checkpoints (PIN before every signature).
    case signature = 0x9C
    /// Key management: ECDH, which unwraps ukeyd's store key (PIN once per session).
    case keyManagement = 0x9D
    /// Card authentication: no PIN.
    case cardAuthentication = 0x9E

    /// The data object that holds the slot's certificate.
    public var certificateObject: Int {
        switch self {
        case .authentication: 0x5FC105
        case .signature: 0x5FC10A
        case .keyManagement: 0x5FC10B
        case .cardAuthentication: 0x5FC101
        }
    }

    public var needsPIN: Bool { self != .cardAuthentication }
    /// The signature key wants the PIN again for every use (PIN-always).
    public var pinAlways: Bool { self == .signature }
}
