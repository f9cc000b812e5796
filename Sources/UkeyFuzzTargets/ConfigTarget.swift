import UkeyConfig
import UkeyDaemon

extension FuzzTarget {
    /// `ukeyd.toml`: the strict TOML subset, then the settings it sets.
    static let config = FuzzTarget(
        name: "config",
        property:
            "what is taken has only section.key names of bare keys and applies or is refused; a refusal names a line inside the text",
        check: { bytes throws(FuzzFailure) in
            let text = String(decoding: bytes, as: UTF8.self)
            switch Result(catching: { () throws(ConfigFile.ParseError) -> ConfigFile in try ConfigFile(parsing: text) })
            {
            case .success(let file):
                for key in file.values.keys {
                    let parts = key.split(separator: ".", omittingEmptySubsequences: false)
                    try require(
                        (1...2).contains(parts.count)
                            && parts.allSatisfy {
                                !$0.isEmpty && $0.count <= 64 && $0.unicodeScalars.allSatisfy(isBareKeyScalar)
                            },
                        "the key '\(key)' is no section.key of bare keys"
                    )
                }
                var settings = DaemonSettings()
                _ = try? settings.apply(file)
            case .failure(let error):
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
                try require(
                    (error.line == 0 && text.utf8.count > ConfigFile.maxBytes) || (1...lines).contains(error.line),
                    "refused at line \(error.line) of \(lines): \(error)"
                )
                try require(!error.message.isEmpty, "a refusal without a reason")
            }
        },
        seeds: {
            [
                "# ukeyd settings\n[daemon]\nmax-connections = 1_024\nsocket-group = \"ukey\"\n[token]\nregisters = \"tpm\" # PCRs\n[audit]\nexec-allows = \"sampled\"\n",
                "[tpm]\ntcti = \"swtpm:path=/run/s.sock\"\n[boot]\nmax-measurements = 100\nlist = [\"a\", \"b,c\", \"\\\"q\\\"\"]\n",
                "[token]\nalgorithm = \"sm2\"\nsm2-id = \"1234567812345678\"\nbanks = [\"sha256\", \"sm3\"]\n",
            ].map { Array($0.utf8) }
        }
    )

    static func isBareKeyScalar(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_"
            || scalar == "-"
    }
}
