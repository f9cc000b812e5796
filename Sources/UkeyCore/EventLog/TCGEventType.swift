/// Event types of the TCG PC Client Platform Firmware Profile (section 10.4.1) that ukey writes.
public enum TCGEventType {
    /// Not extended into any register; the Spec ID header is one. ukey writes no others, since
    /// tpm2-tools 5.4 wrongly replays later EV_NO_ACTION events into PCR 0.
    public static let noAction: UInt32 = 0x0000_0003
    /// "Initial Program Load": the code the platform loads next; ukey uses it for every measurement.
    public static let ipl: UInt32 = 0x0000_000D
}
