import UkeyConfig
import UkeyCore
import UkeyToken

/// ukeyd's settings, from `/etc/ukey/ukeyd.toml` (or `--config`), which command-line flags
/// override. Unknown keys are errors: a typo must not quietly fall back to a default.
///
/// ```toml
/// [daemon]
/// state-dir = "/var/lib/ukey"
/// runtime-dir = "/run/ukey"
/// socket = "/run/ukey/ukeyd.sock"
/// socket-mode = "0660"
/// socket-group = "ukey"
/// idle-timeout = 60          # seconds
/// max-connections = 1024
/// max-connections-per-uid = 32   # for a uid without the admin or hypervisor role
/// log-level = "info"
/// policy-dir = "/etc/ukey/policies"   # signed policies; the newest is loaded at start and on SIGHUP
///
/// [boot]
/// max-measurements = 1000000   # per host boot; past it measurements are refused, never forgotten
/// reuse-measurements = true   # a read-only image unchanged since it was hashed this boot is not hashed again
///
/// [audit]
/// checkpoint-every = 1000    # records between signed checkpoints
/// checkpoint-seconds = 60    # or this long, whichever comes first
/// max-size = 67108864        # bytes; past it the log is archived and a new file continues it (0: never)
/// keep-archives = 0          # archives kept; at a rotation older ones are removed, each removal
///                            # recorded first (0: all)
/// max-total = 0              # bytes the archives and the current file may take; the same (0: any)
/// exec-allows = "none"       # which allowed executions are recorded: all, sampled, none (denials always are)
/// exec-allow-sample = 100    # with "sampled": one in this many
/// forward = "none"           # a copy of each record to "journal" (systemd's) or "syslog" (/dev/log)
/// forward-socket = "..."     # the collector's socket, if not the destination's usual one
///
/// [guard]
/// guest-sockets = "/run/ukey/guard"   # where each VM's guard channel is bound, as <vm>.sock
///                                     # (default: guard/ in the runtime directory)
///
/// [roles]
/// admin-group = "ukey-admin"
/// hypervisor-group = "libvirt-qemu"
///
/// [token]
/// registers = "soft"         # "tpm": measurements extend real PCRs, quotes are TPM2_Quote
/// keys = "soft"              # "tpm": the store key sealed to the TPM, audit key and randomness in it
/// users = "soft"
/// banks = ["sha256", "sm3"]  # the soft registers' banks (default ["sha256"]); a policy with sm3
///                            # digests needs "sm3" here
/// algorithm = "p256"         # the token's and its users' keys, chosen at Initialize: "p256", or
///                            # "sm2" (SM2-with-SM3; every role soft)
/// sm2-id = "1234567812345678"   # the SM2 distinguishing ID every signature carries (default GM/T's)
/// store = "device-key"       # what unwraps the sealed store: "device-key" (a file beside it) or "tpm";
///                            # default: "tpm" when keys = "tpm", else "device-key"
///
/// [tpm]
/// tcti = "device:/dev/tpmrm0"   # or "swtpm:path=/run/swtpm/sock"
///
/// [vtpm]
/// state-dir = "/var/lib/ukey-vtpm"  # each VM's encrypted swtpm state (default: state-dir + "-vtpm")
/// user = "tss"                       # who swtpm runs as (never root: a guest talks to it)
/// sockets = "/run/ukey/vtpm"         # each VM's control socket, <vm>.sock (default: vtpm/ in runtime-dir)
/// swtpm = "/usr/bin/swtpm"
/// swtpm-setup = "/usr/bin/swtpm_setup"
/// certs-tool = "/usr/bin/ukey-vtpm-certs"   # swtpm_setup's certificate tool (default: beside ukeyd)
///
/// [pcsc]
/// reader = "Yubico"             # part of the reader's name; default the first reader
/// pin-file = "/etc/ukey/card.pin"   # the card's PIN, for ukeyd's signatures and its store (0600)
/// ```
public struct DaemonSettings: Sendable, Hashable {
    public var stateDirectory = "/var/lib/ukey"
    public var runtimeDirectory = "/run/ukey"
    /// Where VMs' guard channels are bound (`GuestChannels`); nil: `guard` in the runtime directory.
    public var guestSocketDirectory: String?
    public var guestSockets: String { guestSocketDirectory ?? runtimeDirectory + "/guard" }
    public var socket = "/run/ukey/ukeyd.sock"
    public var socketMode = "0660"
    public var socketGroup: String?
    public var idleTimeout = 60
    public var maxConnections = 1024
    public var maxConnectionsPerUID = 32
    public var logLevel = "info"
    public var policyDirectory = "/etc/ukey/policies"
    public var maxMeasurements = DaemonServices.defaultMaxMeasurements
    /// Whether a read-only file hashed earlier in this host boot, its identity unchanged, is
    /// measured by the digest then (`MeasurementCache`).
    public var reuseMeasurements = true
    public var audit = AuditSettings()
    public var adminGroup = "ukey-admin"
    public var hypervisorGroup = "libvirt-qemu"
    /// Which backend serves each role of the trusted root.
    public var token = TokenComposition.soft
    /// Whether `token.store` was named (else it follows `token.keys`).
    private var storeNamed = false
    /// The soft registers' banks (SHA-256 always among them).
    public var banks: Set<HashAlgorithm> = [.sha256]
    /// The algorithm of the token's keys, used at Initialize; nil when not named (then P-256,
    /// and an opened token keeps whatever it was initialised with).
    public var algorithm: TokenAlgorithm?
    /// The TPM's TCTI, for roles served by the TPM.
    public var tcti = "device:/dev/tpmrm0"
    /// The PCRs a policy's registers may use on the TPM (`[tpm] registers`, e.g. "14-15" on a
    /// Keylime host); nil: every PCR the TPM backend can extend.
    public var tpmRegisters: Set<Int>?
    /// A substring of the card reader's name, for roles served by a card; nil: the first reader.
    public var pcscReader: String?
    /// The file holding the card's PIN, which ukeyd uses to sign with the card and to unwrap its
    /// store (0600, owned by root).
    public var pcscPINFile = "/etc/ukey/card.pin"
    /// `[vtpm]`: where each VM's vTPM state and socket are, and the programs that run it; nil:
    /// the defaults of `VTPMSettings`.
    public var vtpmStateDirectory: String?
    public var vtpmSocketDirectory: String?
    public var swtpm: String?
    public var swtpmSetup: String?
    public var vtpmCertificateTool: String?
    public var vtpmUser: String?

    public init() {}

    /// What the vTPM service runs with.
    public var vtpm: VTPMSettings {
        var vtpm = VTPMSettings(
            stateDirectory: stateDirectory,
            runtimeDirectory: runtimeDirectory,
            daemonSocket: socket,
            hypervisorGroup: hypervisorGroup
        )
        if let vtpmStateDirectory { vtpm.stateDirectory = vtpmStateDirectory }
        if let vtpmSocketDirectory { vtpm.socketDirectory = vtpmSocketDirectory }
        if let swtpm { vtpm.swtpm = swtpm }
        if let swtpmSetup { vtpm.swtpmSetup = swtpmSetup }
        if let vtpmCertificateTool { vtpm.certificateTool = vtpmCertificateTool }
        if let vtpmUser { vtpm.user = vtpmUser }
        return vtpm
    }

    public static let known: Set<String> = [
        "daemon.state-dir", "daemon.runtime-dir", "daemon.socket", "daemon.socket-mode", "daemon.socket-group",
        "daemon.idle-timeout", "daemon.max-connections", "daemon.max-connections-per-uid", "daemon.log-level",
        "daemon.policy-dir",
        "boot.max-measurements", "boot.reuse-measurements", "audit.checkpoint-every", "audit.max-size",
        "audit.keep-archives", "audit.max-total", "audit.checkpoint-seconds", "audit.exec-allows",
        "audit.exec-allow-sample",
        "audit.forward", "audit.forward-socket",
        "roles.admin-group", "roles.hypervisor-group", "token.registers", "token.keys", "token.users", "token.store",
        "tpm.tcti", "tpm.registers", "pcsc.reader", "pcsc.pin-file", "token.banks",
        "token.algorithm", "token.sm2-id", "guard.guest-sockets",
        "vtpm.state-dir", "vtpm.sockets", "vtpm.swtpm", "vtpm.swtpm-setup", "vtpm.certs-tool", "vtpm.user",
    ]

    /// Sets a role's backend ("registers", "keys", "users" or "store"), refusing one that cannot
    /// serve it. The store follows the keys unless it was named.
    public mutating func setBackend(_ role: String, _ value: String) throws(Invalid) {
        switch role {
        case "registers": token.registers = try Self.choice(role, value)
        case "keys":
            token.keys = try Self.choice(role, value)
            if !storeNamed { token.store = TokenComposition.defaultStore(for: token.keys) }
        case "users": token.users = try Self.choice(role, value)
        case "store":
            token.store = try Self.choice(role, value)
            storeNamed = true
        default: throw Invalid(description: "no token role '\(role)' (registers, keys, users, store)")
        }
    }

    private static func choice<Backend: RawRepresentable & CaseIterable>(
        _ role: String,
        _ value: String
    ) throws(Invalid) -> Backend
    where Backend.RawValue == String {
        guard let backend = Backend(rawValue: value) else {
            let names = Backend.allCases.map(\.rawValue)
            let allowed =
                names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " or " + (names.last ?? "")
            throw Invalid(description: "token.\(role) = \"\(value)\": this role can be served by \(allowed)")
        }
        return backend
    }

    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Bank names as hash algorithms; SHA-256 is always a bank.
    public static func banks(_ names: [String]) throws(Invalid) -> Set<HashAlgorithm> {
        var banks: Set<HashAlgorithm> = [.sha256]
        for name in names {
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let algorithm = HashAlgorithm(rawValue: trimmed) else {
                throw Invalid(
                    description:
                        "'token.banks': '\(trimmed)' is not one of \(HashAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            banks.insert(algorithm)
        }
        return banks
    }

    /// The token's algorithm from its name and, for SM2, the distinguishing ID (default GM/T's).
    public static func algorithm(_ name: String, sm2ID: String?) throws(Invalid) -> TokenAlgorithm {
        switch name {
        case "p256":
            guard sm2ID == nil else {
                throw Invalid(description: "'token.sm2-id' is for algorithm = \"sm2\", not p256")
            }
            return .p256
        case "sm2":
            do {
                return .sm2(id: try SM2Identifier.bytes(sm2ID ?? SM2Identifier.defaultText))
            } catch {
                throw Invalid(description: "'token.sm2-id': \(error.reason)")
            }
        default:
            throw Invalid(description: "'token.algorithm' must be \"p256\" or \"sm2\", not \"\(name)\"")
        }
    }

    /// Why the token's algorithm cannot serve this composition, or nil: an SM2 token's keys, users
    /// and store are its own (a TPM's and a card's keys are P-256).
    public var algorithmRefusal: String? {
        guard case .sm2? = algorithm else { return nil }
        guard token.registers == .soft, token.keys == .soft, token.users == .soft, token.store == .deviceKey else {
            return
                "token.algorithm = \"sm2\" needs every role soft (registers, keys, users, store device-key): a TPM's and a card's keys are P-256"
        }
        return nil
    }

    /// Applies a config file over the defaults.
    public mutating func apply(_ file: ConfigFile) throws(Invalid) {
        for key in file.values.keys.sorted() where !Self.known.contains(key) {
            throw Invalid(
                description: "unknown setting '\(key)'; known: \(Self.known.sorted().joined(separator: ", "))"
            )
        }
        func string(_ key: String) throws(Invalid) -> String? {
            switch file[key] {
            case nil: return nil
            case .string(let value)?: return value
            default: throw Invalid(description: "'\(key)' must be a string in double quotes")
            }
        }
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(Invalid) -> Int? {
            switch file[key] {
            case nil: return nil
            case .integer(let value)? where range.contains(value): return value
            default:
                throw Invalid(description: "'\(key)' must be a whole number in \(range.lowerBound)-\(range.upperBound)")
            }
        }
        if let value = try string("daemon.state-dir") { stateDirectory = value }
        if let value = try string("daemon.runtime-dir") { runtimeDirectory = value }
        switch file["token.banks"] {
        case nil: break
        case .strings(let names)?: banks = try Self.banks(names)
        case .string(let text)?: banks = try Self.banks(text.split(separator: ",").map(String.init))
        default:
            throw Invalid(description: "'token.banks' must be a list of hash algorithms, such as [\"sha256\", \"sm3\"]")
        }
        if let name = try string("token.algorithm") {
            algorithm = try Self.algorithm(name, sm2ID: try string("token.sm2-id"))
        } else if try string("token.sm2-id") != nil {
            throw Invalid(description: "'token.sm2-id' needs algorithm = \"sm2\" beside it")
        }
        if let value = try string("guard.guest-sockets") {
            guard value.hasPrefix("/"), value.utf8.count < 90 else {
                throw Invalid(
                    description:
                        "'guard.guest-sockets' must be an absolute path short enough for a socket in it (under 90 bytes)"
                )
            }
            guestSocketDirectory = value
        }
        for (key, path) in [
            ("vtpm.state-dir", \DaemonSettings.vtpmStateDirectory), ("vtpm.swtpm", \.swtpm),
            ("vtpm.swtpm-setup", \.swtpmSetup), ("vtpm.certs-tool", \.vtpmCertificateTool),
        ] {
            guard let value = try string(key) else { continue }
            guard value.hasPrefix("/") else { throw Invalid(description: "'\(key)' must be an absolute path") }
            self[keyPath: path] = value
        }
        if let value = try string("vtpm.user") {
            guard value != "root", value != "0", !value.isEmpty else {
                throw Invalid(description: "'vtpm.user' must be an unprivileged user: a guest talks to its swtpm")
            }
            vtpmUser = value
        }
        if let value = try string("vtpm.sockets") {
            guard value.hasPrefix("/"), value.utf8.count < 80 else {
                throw Invalid(
                    description:
                        "'vtpm.sockets' must be an absolute path short enough for a socket in it (under 80 bytes)"
                )
            }
            vtpmSocketDirectory = value
        }
        if let value = try string("daemon.socket") { socket = value }
        if let value = try string("daemon.socket-mode") { socketMode = value }
        if let value = try string("daemon.socket-group") { socketGroup = value }
        if let value = try integer("daemon.idle-timeout", 1...86_400) { idleTimeout = value }
        if let value = try integer("daemon.max-connections", 1...65_536) { maxConnections = value }
        if let value = try integer("daemon.max-connections-per-uid", 1...65_536) { maxConnectionsPerUID = value }
        if let value = try string("daemon.log-level") { logLevel = value }
        if let value = try string("daemon.policy-dir") { policyDirectory = value }
        if let value = try integer("boot.max-measurements", 1...100_000_000) { maxMeasurements = value }
        switch file["boot.reuse-measurements"] {
        case nil: break
        case .boolean(let value)?: reuseMeasurements = value
        default: throw Invalid(description: "'boot.reuse-measurements' must be true or false")
        }
        if let value = try integer("audit.checkpoint-every", 1...1_000_000) { audit.checkpointEvery = value }
        if let value = try integer("audit.checkpoint-seconds", 1...86_400) { audit.checkpointSeconds = value }
        if let value = try integer("audit.max-size", 0...(1 << 40)) {
            guard value == 0 || value >= AuditSettings.minMaxSize else {
                throw Invalid(
                    description:
                        "'audit.max-size' must be 0 (never rotate) or at least \(AuditSettings.minMaxSize) bytes"
                )
            }
            audit.maxSize = value
        }
        if let value = try integer("audit.keep-archives", 0...1_000_000) { audit.keepArchives = value }
        if let value = try integer("audit.max-total", 0...(1 << 50)) {
            guard value == 0 || value >= 2 * audit.maxSize else {
                throw Invalid(
                    description:
                        "'audit.max-total' must be 0 (any size) or at least twice max-size (\(2 * audit.maxSize) bytes): the current file and the newest archive are always kept"
                )
            }
            audit.maxTotal = value
        }
        if let value = try integer("audit.exec-allow-sample", 1...1_000_000) { audit.execAllowSample = value }
        if let value = try string("audit.exec-allows") {
            guard let allows = AuditSettings.ExecAllows(rawValue: value) else {
                throw Invalid(description: "'audit.exec-allows' must be one of all, sampled, none")
            }
            audit.execAllows = allows
        }
        if let value = try string("audit.forward") {
            guard value == "none" || AuditForwarder.Destination(rawValue: value) != nil else {
                throw Invalid(description: "'audit.forward' must be one of none, journal, syslog")
            }
            audit.forward = value == "none" ? nil : value
        }
        if let value = try string("audit.forward-socket") {
            guard value.hasPrefix("/"), value.utf8.count < 108 else {
                throw Invalid(
                    description: "'audit.forward-socket' must be an absolute path of a Unix socket (under 108 bytes)"
                )
            }
            audit.forwardSocket = value
        }
        if let value = try string("roles.admin-group") { adminGroup = value }
        if let value = try string("roles.hypervisor-group") { hypervisorGroup = value }
        for role in ["registers", "keys", "users", "store"] {
            if let value = try string("token.\(role)") { try setBackend(role, value) }
        }
        if let value = try string("pcsc.reader") {
            guard !value.isEmpty, value.utf8.count <= 256 else {
                throw Invalid(description: "'pcsc.reader' must be part of a reader's name, such as \"Yubico\"")
            }
            pcscReader = value
        }
        if let value = try string("pcsc.pin-file") {
            guard value.hasPrefix("/") else { throw Invalid(description: "'pcsc.pin-file' must be an absolute path") }
            pcscPINFile = value
        }
        if let value = try string("tpm.tcti") {
            guard !value.isEmpty, value.utf8.count <= 1024 else {
                throw Invalid(description: "'tpm.tcti' must be a TCTI string such as \"device:/dev/tpmrm0\"")
            }
            tcti = value
        }
        if let value = try string("tpm.registers") { tpmRegisters = try Self.pcrs(value) }
    }

    /// "14-15" or "8,9,14-15": the PCRs a policy may place its registers on. PCR 10 (IMA's: the
    /// kernel extends it, and a Keylime verifier does not replay it from the log) and 16 (a
    /// Keylime agent resets it to bind its key) are refused: an entity there could not be checked.
    public static func pcrs(_ text: String) throws(Invalid) -> Set<Int> {
        let usage = "'tpm.registers' must list PCRs in 8-15 and 23, such as \"14-15\" or \"8,9,14,15\""
        guard text.utf8.count <= 64 else { throw Invalid(description: usage) }
        var pcrs: Set<Int> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.trimmingCharacters(in: .whitespaces).split(
                separator: "-",
                omittingEmptySubsequences: false
            )
            guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]),
                low <= high
            else { throw Invalid(description: usage) }
            for pcr in low...high {
                switch pcr {
                case 10:
                    throw Invalid(
                        description:
                            "'tpm.registers': PCR 10 is IMA's (the kernel extends it, and Keylime's verifier does not replay it from the log)"
                    )
                case 16:
                    throw Invalid(
                        description: "'tpm.registers': PCR 16 is reset by a Keylime agent to bind its key"
                    )
                case 8...15, 23: pcrs.insert(pcr)
                default: throw Invalid(description: usage)
                }
            }
        }
        guard !pcrs.isEmpty else { throw Invalid(description: usage) }
        return pcrs
    }
}
