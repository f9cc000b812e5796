/// What one measurement did: the answer to the hypervisor and the effects the caller must carry out.
public struct MeasurementOutcome: Hashable, Sendable {
    public let entity: String
    public let component: String
    public let digest: Digest
    /// The entity's state after this measurement.
    public let state: EntityState
    /// Whether this component's digest equalled the expected one.
    public let match: Bool
    /// Why the entity is untrusted, when it is.
    public let reason: UntrustedReason?
    /// Whether the parent was trusted when this measurement was made.
    public let parentTrusted: Bool
    /// The register this measurement extends.
    public let register: Int
    /// What the caller must do, in order: always a register extend with its event first
    /// (measure first, decide second), then the entities this measurement made untrusted.
    public let effects: [ChainEffect]

    /// The load decision: in `enforce` mode the hypervisor may load the component only when it
    /// matched, the parent was trusted and the entity is not untrusted; in `audit` mode it always may.
    public func mayLoad(in mode: EnforcementMode) -> Bool {
        switch mode {
        case .audit: true
        case .enforce: match && parentTrusted && state != .untrusted
        }
    }
}

/// A side effect of the boot chain, for the caller to apply to a register bank, an event log and
/// the audit log. The chain itself performs no I/O.
public enum ChainEffect: Hashable, Sendable {
    /// Extend `register` with `digest` and log an event whose data is `eventData`.
    case extend(register: Int, digest: Digest, eventData: String)
    /// `entity` became untrusted in this boot for `reason`.
    case becameUntrusted(entity: String, reason: UntrustedReason)
    /// `entity` became trusted.
    case becameTrusted(entity: String)
    /// A new boot began: zero every register and start a new event log.
    case reset(previousBootID: String, bootID: String)
}
