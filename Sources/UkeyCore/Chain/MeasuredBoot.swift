/// The boot chain with its software registers and event log: `BootChain`'s effects carried out in
/// memory. Used in process (ukeyctl's simulation, tests) and by the soft token; a TPM backend
/// instead carries the extend effects out on real PCRs.
public struct MeasuredBoot: Sendable {
    public private(set) var chain: BootChain
    public private(set) var registers: RegisterSet
    public private(set) var eventLog: EventLog

    public init(expected: ExpectedSet, bootID: String, banks: Set<HashAlgorithm> = [.sha256]) {
        self.chain = BootChain(expected: expected, bootID: bootID)
        self.registers = RegisterSet(algorithms: banks)
        self.eventLog = EventLog(banks: registers.algorithms, vendorInfo: "ukey boot \(bootID)")
    }

    /// Measures, records (register extend and event, whatever the verdict) and returns the outcome
    /// with the index of the event that recorded it.
    public mutating func measure(
        entity: String,
        component: String,
        digest: Digest
    ) throws(UkeyCoreError) -> (outcome: MeasurementOutcome, eventIndex: Int) {
        let outcome = try chain.measure(entity: entity, component: component, digest: digest)
        var eventIndex = -1
        for effect in outcome.effects {
            if case .extend(let register, let digest, let eventData) = effect {
                try registers.extend(register, with: digest)
                eventIndex = eventLog.appendMeasurement(register: register, digest: digest, description: eventData)
            }
        }
        return (outcome, eventIndex)
    }

    /// Starts a new boot: registers zeroed, and a fresh event log whose header names the new boot
    /// and the one it replaced.
    public mutating func reset(bootID: String) -> [ChainEffect] {
        let previous = chain.bootID
        let effects = chain.reset(bootID: bootID)
        registers = RegisterSet(algorithms: Set(registers.algorithms))
        eventLog = EventLog(banks: registers.algorithms, vendorInfo: "ukey boot \(bootID) reset-from \(previous)")
        return effects
    }
}
