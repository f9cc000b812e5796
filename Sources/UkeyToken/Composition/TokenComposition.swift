/// Which backend serves each role of the trusted root, parsed once from `[token]` in the config.
/// Every role is a typed choice, so a backend a role cannot have is not a value of its type.
public struct TokenComposition: Sendable, Hashable {
    /// The measurement registers and the quotes of them.
    public enum Registers: String, CaseIterable, Sendable {
        case soft, tpm
    }

    /// The token's restricted keys (CAs, audit), random numbers and users' signing keys.
    public enum Keys: String, CaseIterable, Sendable {
        case soft, tpm
        /// A PIV card (or YubiKey) through pcsc-lite: audit checkpoints and quotes signed by its
        /// 9c key, random bytes from it.
        case pcsc
    }

    /// Users' PINs and their retry counters.
    public enum Users: String, CaseIterable, Sendable {
        case soft
        /// The card's own PIN and PUK, with the card's retry counters.
        case pcsc
    }

    /// What unwraps the sealed store's key when ukeyd starts.
    public enum Store: String, CaseIterable, Sendable {
        /// `STATE/device.key`, a file beside the store: protects against the theft of the
        /// store alone.
        case deviceKey = "device-key"
        /// Sealed to the TPM: the store opens on this host's TPM only.
        case tpm
        /// Wrapped to the card's key-management key (9d): the store opens only with the card in.
        case pcsc
    }

    public var registers: Registers
    public var keys: Keys
    public var users: Users
    public var store: Store

    /// Everything in software, the store key in a file beside it: the default, and `make demo`'s.
    public static let soft = TokenComposition(registers: .soft, keys: .soft, users: .soft, store: .deviceKey)

    public init(registers: Registers, keys: Keys, users: Users, store: Store) {
        self.registers = registers
        self.keys = keys
        self.users = users
        self.store = store
    }

    /// The store's protection when the config does not name it: where the keys are.
    public static func defaultStore(for keys: Keys) -> Store {
        switch keys {
        case .soft: .deviceKey
        case .tpm: .tpm
        case .pcsc: .pcsc
        }
    }

    /// Why this mix makes no sense, or nil. Checked at start, before anything is opened.
    public var refusal: String? {
        if keys != .soft && store == .deviceKey {
            // The sealed store holds every user's signing key and PIN record: a file beside it
            // would open it for anyone who copies the state directory, whatever guards the CAs.
            return
                "token.keys = \"\(keys.rawValue)\" with token.store = \"device-key\": the sealed store (users' keys and PINs) would open with a file beside it, so the \(keys.rawValue) keys would protect nothing an attacker needs; use store = \"\(keys.rawValue)\""
        }
        if users == .pcsc && keys != .pcsc {
            // Login then checks the card's PIN, which guards nothing ukeyd signs with.
            return
                "token.users = \"pcsc\" needs token.keys = \"pcsc\": the card's PIN would guard none of the token's keys"
        }
        return nil
    }

    public var usesCard: Bool { keys == .pcsc || users == .pcsc || store == .pcsc }

    public var usesTPM: Bool { registers == .tpm || keys == .tpm || store == .tpm }

    /// Each role's backend by name, as `Token.Info` and `Admin.Status` report it.
    public var roleNames: [String: String] {
        ["registers": registers.rawValue, "keys": keys.rawValue, "users": users.rawValue, "store": store.rawValue]
    }

    /// The hardware the token uses ("tpm", "pcsc", "tpm+pcsc"), or "soft" when it uses none.
    public var summary: String {
        let hardware = (usesTPM ? ["tpm"] : []) + (usesCard ? ["pcsc"] : [])
        return hardware.isEmpty ? "soft" : hardware.joined(separator: "+")
    }
}
