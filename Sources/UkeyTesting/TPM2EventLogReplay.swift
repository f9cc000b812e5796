import Foundation

/// What `tpm2_eventlog` (tpm2-tools) replays a log to: the `pcrs:` section of its YAML, as
/// bank name -> register -> lower-case hex. The independent reader's side of every event-log test.
public enum TPM2EventLogReplay {
    public static func registers(_ output: String) -> [String: [Int: String]] {
        var banks: [String: [Int: String]] = [:]
        var inPCRs = false
        var bank: String?
        for line in output.split(separator: "\n", omittingEmptySubsequences: true) {
            if line == "pcrs:" {
                inPCRs = true
                continue
            }
            guard inPCRs else { continue }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasSuffix(":") && !trimmed.contains(" ") {
                bank = String(trimmed.dropLast())
            } else if let bank, let colon = trimmed.firstIndex(of: ":") {
                let index = Int(trimmed[..<colon].trimmingCharacters(in: .whitespaces))
                let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                if let index, value.hasPrefix("0x") {
                    banks[bank, default: [:]][index] = value.dropFirst(2).lowercased()
                }
            }
        }
        return banks
    }
}
