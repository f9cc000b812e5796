import UkeyCore

extension FuzzTarget {
    /// The TCG PC Client crypto-agile event log (a verifier's input).
    static let eventLog = FuzzTarget(
        name: "event-log",
        property: "what is taken serializes to bytes that read back to the same log",
        check: { bytes throws(FuzzFailure) in
            guard let log = try? EventLog(parsing: bytes) else { return }
            let written = log.serialized()
            try require(
                (try? EventLog(parsing: written)) == log,
                "a log read from \(bytes.count) bytes does not survive serialization"
            )
        },
        seeds: {
            var log = EventLog(banks: [.sha256, .sha384])
            log.appendMeasurement(register: 8, digest: Digest.of(Array("kernel".utf8)), description: "vmm/kernel")
            log.appendMeasurement(register: 11, digest: Digest.of(Array("disk".utf8)), description: "office/disk")
            return [EventLog(banks: [.sha256]).serialized(), log.serialized()]
        }
    )
}
