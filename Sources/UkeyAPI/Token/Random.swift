extension Token {
    public enum Random: APIMethod {
        public static let name = "io.ukey.Token.Random"
        public static let role: Role? = nil
        public static let range = 1...1024
        public static let idl = """
            # 1-1024 random bytes, base64.
            method Random(bytes: int) -> (data: string)
            """

        public struct Request: APIMessage, Equatable {
            public var bytes: Int

            public init(bytes: Int) {
                self.bytes = bytes
            }

            public func validate() throws(APIError) {
                guard Random.range.contains(bytes) else { throw .invalidParameter("bytes") }
            }
        }

        public struct Reply: APIMessage, Equatable {
            public var data: Base64Bytes

            public init(data: [UInt8]) {
                self.data = Base64Bytes(data)
            }
        }
    }
}
