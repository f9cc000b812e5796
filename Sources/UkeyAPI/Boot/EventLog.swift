extension Boot {
    /// The TCG PC Client crypto-agile event log of this boot.
    public enum EventLog: APIMethod {
        public static let name = "io.ukey.Boot.EventLog"
        public static let role: Role? = nil
        public static let idl = """
            # The TCG PC Client crypto-agile event log of this boot, base64.
            method EventLog() -> (format: string, data: string)
            """

        public typealias Request = Empty

        public struct Reply: APIMessage, Equatable {
            public var format: String
            public var data: Base64Bytes

            public init(format: String = "tcg-pfp", data: [UInt8]) {
                self.format = format
                self.data = Base64Bytes(data)
            }
        }
    }
}
