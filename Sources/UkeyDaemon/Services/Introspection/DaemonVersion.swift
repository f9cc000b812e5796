/// What ukeyd says it is: in GetInfo, `Admin.Version` and the audit log's daemon-start records.
public enum DaemonVersion {
    public static let vendor = "ukey"
    public static let product = "ukeyd"
    public static let version = "0.1.0"
    public static let url = "https://ukey.invalid/"
}
