/// A parser of untrusted bytes, with the property its fuzzer checks on every input: not only
/// "no crash" but a statement about what the parser made of the bytes (a round trip, agreement
/// with an independent reader, an invariant). libFuzzer drives `check` from `ukey-fuzz`; the
/// regression test runs it over the committed corpus (`Tests/Fuzz/Corpus/<name>/`).
public struct FuzzTarget: Sendable {
    public let name: String
    /// What the property is, for the report.
    public let property: String
    public let check: @Sendable ([UInt8]) throws(FuzzFailure) -> Void
    /// Well-formed inputs the corpus starts from.
    public let seeds: @Sendable () -> [[UInt8]]

    public init(
        name: String,
        property: String,
        check: @escaping @Sendable ([UInt8]) throws(FuzzFailure) -> Void,
        seeds: @escaping @Sendable () -> [[UInt8]]
    ) {
        self.name = name
        self.property = property
        self.check = check
        self.seeds = seeds
    }

    /// Every target, by name.
    public static let all: [FuzzTarget] = [
        .json, .varlink, .apiRequest, .keylimeAgent, .vtpmEndorsementKey, .policy, .allowList, .config, .eventLog,
        .tpm2Quote, .ukeyQuote,
        .auditLine,
        .store, .journal,
        .pivCard, .sm2, .sm2Certificate,
        .qemuCommandLine, .domainXML, .qcow2Header, .mountTable,
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// A property that did not hold, with what was seen.
public struct FuzzFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Fails the input unless `condition` holds.
@inline(__always)
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzFailure) {
    if !condition { throw FuzzFailure(message()) }
}
