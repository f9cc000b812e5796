/// PEM as RFC 7468 writes it: text outside the `-----BEGIN` / `-----END` lines is explanation,
/// which parsers ignore (openssl does). ukey's demo keys carry such a header saying they are for
/// tests only; swift-crypto and swift-certificates read only the block itself.
public enum PEMText {
    /// The first PEM block of `text`, from its BEGIN line to its END line, or `text` unchanged
    /// when there is no complete block (the parser then says what is wrong).
    public static func firstBlock(of text: String) -> String {
        guard let begin = text.firstRange(of: "-----BEGIN "),
            let endMarker = text[begin.upperBound...].firstRange(of: "-----END "),
            let close = text[endMarker.upperBound...].firstRange(of: "-----")
        else { return text }
        return String(text[begin.lowerBound..<close.upperBound]) + "\n"
    }
}
