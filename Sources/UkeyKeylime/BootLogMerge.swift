import UkeyCore

/// One crypto-agile log for the verifier: the firmware's own (PCRs 0-7 and what its loaders
/// measured), then ukey's events, so a quote's every PCR replays from one log. The firmware's
/// bytes go out as they came; ukey's events follow, each with a digest for every bank the
/// firmware's header declares, in its order.
public enum BootLogMerge {
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    public static func merge(firmware: [UInt8], ukey: [UInt8]) throws(Refusal) -> [UInt8] {
        let base: EventLog
        let ours: EventLog
        do {
            base = try EventLog(parsing: firmware)
        } catch {
            throw Refusal(description: "the firmware's event log cannot be read: \(error)")
        }
        do {
            ours = try EventLog(parsing: ukey)
        } catch {
            throw Refusal(description: "ukey's event log cannot be read: \(error)")
        }
        let ourBanks = Set(ours.algorithms.map(\.algorithmID))
        if let missing = base.algorithms.first(where: { !ourBanks.contains($0.algorithmID) }) {
            throw Refusal(
                description:
                    "the firmware's log declares the bank 0x\(String(missing.algorithmID, radix: 16)), which ukey does not extend: allocate only banks ukey extends (tpm2_pcrallocate sha256:all) or add the bank to [token] banks"
            )
        }
        var merged = base
        for event in ours.events where event.eventType != TCGEventType.noAction {
            let digests = base.algorithms.compactMap { bank in
                event.digests.first { $0.algorithmID == bank.algorithmID }
            }
            merged.append(
                EventLog.Event(
                    registerIndex: event.registerIndex,
                    eventType: event.eventType,
                    digests: digests,
                    data: event.data
                )
            )
        }
        // The events appended, serialized as the rest: the firmware's part is kept byte for byte.
        return firmware + merged.serialized().dropFirst(base.serialized().count)
    }
}
