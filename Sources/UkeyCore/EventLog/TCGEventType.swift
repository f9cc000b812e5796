/// Event types of the TCG PC Client Platform Firmware Profile (section 10.4.1) that ukey writes.
public enum TCGEventType {
    /// Not extended into any register; carries the Spec ID header and ukey's boot-reset marker.
    public static let noAction: UInt32 = 0x0000_0003
    /// "Initial Program Load": the code the platform loads next; ukey uses it for every measurement.
    public static let ipl: UInt32 = 0x0000_000D
}
