import Crypto
import Foundation
import Testing
import UkeyClient
import UkeyCore
import UkeySM
import UkeyTesting
import UkeyToken
import UkeyVarlink
import X509

/// A daemon provisioned as `make demo` does: token initialised with the demo policy signer of
/// `keys/demo/` (so it runs with `--allow-demo-keys`), the demo policy signed and loaded, users
/// alice and bob, and the demo host's images on disk.
struct DaemonFixture {
    static let soPIN = "so-pin42"
    static let root = PackagePaths.root()
    let daemon: TestDaemon
    let signer: P256.Signing.PrivateKey
    let images: TemporaryDirectory
    let policyText: String

    static let pins = ["alice": "alice-p1", "bob": "bob-pin2"]

    init(
        arguments: [String] = [],
        load: Bool = true,
        backend: TestBackend = .fromEnvironment,
        manufacturedTPM: Bool = false
    ) throws {
        if backend == .pcsc {
            // Users' PINs are their cards' (PUK: the SO PIN): a test that changed one must not leak
            // into the next. ukeyd's keys card is no user's: its PIN is only in ukeyd's pin file.
            for (user, reader) in VirtualCardPeer.userReaders {
                try VirtualCardPeer.resetPIN(reader: reader, puk: Self.soPIN, pin: Self.pins[user]!)
            }
            try VirtualCardPeer.resetPIN(
                reader: VirtualCardPeer.keysReader,
                puk: Self.soPIN,
                pin: VirtualCardPeer.keysPIN
            )
        }
        daemon = try TestDaemon(
            arguments: arguments + ["--allow-demo-keys"],
            backend: backend,
            manufacturedTPM: manufacturedTPM
        )
        signer = try Self.demoSigner()
        images = try TemporaryDirectory("ukey-images")
        let result = try ExternalTool.run(
            "/bin/bash",
            ["\(Self.root)/scripts/demo-images.sh", images.path, "\(Self.root)/policies/demo.yaml"]
        )
        guard result.status == 0 else { throw TestDaemonError(result.stderr) }
        // The demo policy, its file hints pointed at the images directory.
        let original = try String(contentsOfFile: "\(Self.root)/policies/demo.yaml", encoding: .utf8)
        let pointed = original.replacingOccurrences(of: "file: /", with: "file: \(images.path)/")
        policyText = backend == .sm2 ? try Self.withSM3Digests(pointed) : pointed
        try daemon.call(
            "io.ukey.Admin.Initialize",
            ["soPin": .string(Self.soPIN), "policySigner": .string(try Self.demoSignerCertificatePEM())]
        )
        if load { try loadPolicy(policyText) }
        try daemon.call("io.ukey.Admin.AddUser", ["user": "alice", "pin": "alice-p1", "roles": ["office"]])
        try daemon.call("io.ukey.Admin.AddUser", ["user": "bob", "pin": "bob-pin2", "roles": ["developer"]])
    }

    /// The policy with each component that names a file expected as that file's SM3 digest, as
    /// a site using SM3 writes it (the SM2 backend's suites run on this).
    static func withSM3Digests(_ text: String) throws -> String {
        let lookup = try UkeyPolicyLookup(text: text)
        var result = text
        for (entity, components) in lookup.files {
            for (component, file) in components {
                let digest = SM3.hash(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
                result = result.replacingOccurrences(
                    of: lookup.digest(entity, component),
                    with: "sm3:" + Hex.encode(digest)
                )
            }
        }
        return result
    }

    static let demoSignerPath = "\(root)/keys/demo/policy-signer.TEST-ONLY"

    /// The demo policy signer's private key (public on purpose: tests and demos only).
    static func demoSigner() throws -> P256.Signing.PrivateKey {
        try P256.Signing.PrivateKey(
            pemRepresentation: PEMText.firstBlock(
                of: String(contentsOfFile: demoSignerPath + ".key.pem", encoding: .utf8)
            )
        )
    }

    static func demoSignerCertificatePEM() throws -> String {
        try String(contentsOfFile: demoSignerPath + ".pem", encoding: .utf8)
    }

    /// Lets other uids reach this daemon as real peers would: its directory (standing for /run)
    /// and, unless `keepRuntimeDirectory`, its runtime directory become traversable, and they get
    /// a copy of ukeyctl they may run (the build directory need not be theirs to read). Returns
    /// the copy's path.
    func openToOtherUsers(keepRuntimeDirectory: Bool = false) throws -> String {
        chmod(daemon.directory.path, 0o711)
        if !keepRuntimeDirectory { chmod(daemon.runtimeDirectory, 0o711) }
        let binary = daemon.directory.file("ukeyctl")
        if !FileManager.default.fileExists(atPath: binary) {
            try FileManager.default.copyItem(atPath: PackagePaths.builtProduct("ukeyctl"), toPath: binary)
        }
        chmod(binary, 0o755)
        return binary
    }

    func sign(_ text: String) throws -> String {
        Data(try signer.signature(for: SHA256.hash(data: Array(text.utf8))).derRepresentation).base64EncodedString()
    }

    @discardableResult
    func loadPolicy(_ text: String, signature: String? = nil) throws -> [String: JSONValue] {
        try daemon.call(
            "io.ukey.Admin.LoadPolicy",
            ["policy": .string(text), "signature": .string(try signature ?? sign(text))]
        )
    }

    /// The policy's expected digest of a component.
    func expected(_ entity: String, _ component: String) throws -> String {
        let policy = try UkeyPolicyLookup(text: policyText)
        return policy.digest(entity, component)
    }

    /// Measures every component of `entity` by path, as the hypervisor does.
    @discardableResult
    func measureByPath(
        _ entity: String,
        session: String? = nil,
        on connection: VarlinkConnection? = nil
    ) throws -> [[String: JSONValue]] {
        let connection = try connection ?? daemon.connect()
        let policy = try UkeyPolicyLookup(text: policyText)
        return try policy.components(entity).map { component, file in
            var parameters: [String: JSONValue] = [
                "entity": .string(entity), "component": .string(component), "path": .string(file),
            ]
            if let session { parameters["session"] = .string(session) }
            return try connection.call("io.ukey.Boot.Measure", parameters)
        }
    }

    func state(_ entity: String) throws -> (state: String, reason: String?) {
        let chain = try daemon.call("io.ukey.Boot.Chain")
        let node = chain["entities"]?.arrayValue?.first { $0["name"]?.stringValue == entity }
        return (node?["state"]?.stringValue ?? "?", node?["reason"]?.stringValue)
    }

    /// Verifies a Boot.Quote reply, of either format, and that it quotes `replayed` (the values the
    /// event log replays to): a ukey-v1 quote carries the values, a tpm2 quote their digest.
    func checkQuote(_ reply: [String: JSONValue], nonce: [UInt8], against replayed: [[UInt8]]) throws {
        let quote = Array(Data(base64Encoded: reply["quote"]!.stringValue!)!)
        let signature = Array(Data(base64Encoded: reply["signature"]!.stringValue!)!)
        let certificate = reply["certificate"]!.stringValue!
        if reply["format"] == "tpm2" {
            _ = try QuoteVerifier.verifyTPM2(
                attest: quote,
                signature: signature,
                certificatePEM: certificate,
                nonce: nonce,
                registerValues: Dictionary(uniqueKeysWithValues: replayed.enumerated().map { ($0.offset, $0.element) })
            )
        } else {
            let verified = try QuoteVerifier.verify(
                quote: quote,
                signature: signature,
                certificatePEM: certificate,
                nonce: nonce
            )
            for register in verified.quote.registers {
                #expect(replayed[register.index] == register.value, "register \(register.index)")
            }
        }
    }

    /// Boots the demo host in order: every service entity, then the base image.
    func bootHost() throws {
        for entity in ["vmm", "io-vm", "io-loader", "io-kernel", "mgmt-vm", "debian-base"] { try measureByPath(entity) }
    }
}

/// Just enough of the demo policy's text to find files and digests, without the daemon.
struct UkeyPolicyLookup {
    var files: [String: [(String, String)]] = [:]
    var digests: [String: String] = [:]

    init(text: String) throws {
        var entity = ""
        var component = ""
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("  - name: ") { entity = String(trimmed.dropFirst(8)) }
            if line.hasPrefix("      - name: ") { component = String(trimmed.dropFirst(8)) }
            if line.hasPrefix("        file: ") {
                files[entity, default: []].append((component, String(trimmed.dropFirst(6))))
            }
            if line.hasPrefix("        digest: "), !entity.isEmpty, !component.isEmpty {
                digests["\(entity)/\(component)"] = String(trimmed.dropFirst(8))
            }
        }
    }

    func components(_ entity: String) -> [(String, String)] { files[entity] ?? [] }
    func digest(_ entity: String, _ component: String) -> String { digests["\(entity)/\(component)"] ?? "" }
}

extension VarlinkError {
    static func named(_ name: String) -> (any Error) -> Bool {
        { ($0 as? VarlinkError)?.name == name }
    }
}
