/// Who may take one of the daemon's connection slots. A slot is held for as long as the client
/// stays connected, so unprivileged peers (the user role alone) must never be able to hold them
/// all: they share the slots except the last few, which only admin and hypervisor peers may take,
/// and each uid of theirs may hold only so many.
struct ConnectionAdmission: Sendable {
    struct Limits: Sendable, Hashable {
        var maxConnections: Int
        var maxPerUnprivilegedUID: Int

        /// Slots kept for admin and hypervisor peers: an eighth of the total, 1 to 16.
        var reserved: Int { maxConnections > 1 ? min(16, max(1, maxConnections / 8)) : 0 }
    }

    enum Refusal: Sendable {
        case full(Int)
        case reserved(Int)
        case perUID(Int)

        var reason: String {
            switch self {
            case .full(let limit): "all \(limit) connections are in use"
            case .reserved(let kept): "the last \(kept) connections are kept for administrators and the hypervisor"
            case .perUID(let limit):
                "this uid already holds \(limit) connections, the most a peer without the admin or hypervisor role may hold"
            }
        }
    }

    private(set) var total = 0
    private var unprivilegedByUID: [UInt32: Int] = [:]

    /// Takes a slot for a peer, or says why not.
    mutating func admit(uid: UInt32, privileged: Bool, limits: Limits) -> Refusal? {
        guard total < limits.maxConnections else { return .full(limits.maxConnections) }
        if !privileged {
            guard total < limits.maxConnections - limits.reserved else { return .reserved(limits.reserved) }
            let held = unprivilegedByUID[uid, default: 0]
            guard held < limits.maxPerUnprivilegedUID else { return .perUID(limits.maxPerUnprivilegedUID) }
            unprivilegedByUID[uid] = held + 1
        }
        total += 1
        return nil
    }

    /// Gives back the slot `admit` took.
    mutating func leave(uid: UInt32, privileged: Bool) {
        total -= 1
        if !privileged {
            let held = unprivilegedByUID[uid, default: 1] - 1
            unprivilegedByUID[uid] = held > 0 ? held : nil
        }
    }
}
