import Glibc

/// Which file each measured path must be when QEMU opens it: the "measured is what is opened"
/// half of the gate, as plain state (the `OpenGuard` holds it and asks it at every held open).
///
/// A pin is taken when ukeyd hashes a file for a VM's start (`Boot.Measure` with `hold` naming
/// the VM): the path, the VM, and the identity of the very descriptor it hashed. Until the VM's QEMU has
/// opened its files (`Boot.Started`) or the VM is released, an open of that path that finds
/// another file (renamed into place after the hash) or the same file changed (size or mtime) is
/// refused. Identity is (device, inode, size, mtime): not ctime, which libvirt's chown of the
/// image to the QEMU user moves between the hook and QEMU's start.
struct IdentityPins: Sendable {
    struct Identity: Sendable, Equatable, CustomStringConvertible {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let modifiedSeconds: Int
        let modifiedNanoseconds: Int

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modifiedSeconds = info.st_mtim.tv_sec
            modifiedNanoseconds = info.st_mtim.tv_nsec
        }

        init?(descriptor: Int32) {
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { return nil }
            self.init(info)
        }

        init(device: UInt64, inode: UInt64, size: Int64, modified: timespec) {
            self.device = device
            self.inode = inode
            self.size = size
            modifiedSeconds = modified.tv_sec
            modifiedNanoseconds = modified.tv_nsec
        }

        var description: String { "inode \(inode) on device \(device), \(size) bytes" }
    }

    enum Judgement: Sendable, Equatable {
        case allow
        /// Another file (or the file changed) at a path pinned for `owner`'s start.
        case deny(owner: String, expected: Identity)
    }

    /// Pinned path -> the VM whose start pinned it -> the identity hashed for that start.
    private(set) var pins: [String: [String: Identity]] = [:]
    /// The starts an open was refused for since they pinned: what QEMU opened then was not all
    /// it was measured to be, so nothing it wrote may be sealed as the VM's state.
    private(set) var refused: Set<String> = []

    /// Pins `path` (as the kernel names it: no symlink, no `..`) for `owner`'s start; returns the
    /// directory to mark when it held no pin before. Several starts may pin one path (VMs over
    /// one parent image): an open must find the file every one of them hashed.
    mutating func pin(_ path: String, owner: String, identity: Identity) -> String? {
        let directory = Self.directory(of: path)
        let markNeeded = !pins.keys.contains { Self.directory(of: $0) == directory }
        pins[path, default: [:]][owner] = identity
        return markNeeded ? directory : nil
    }

    /// Records a refused open for `owner`'s start.
    mutating func noteRefusal(owner: String) {
        refused.insert(owner)
    }

    /// Whether an open was refused for `owner`'s start, forgetting it (the start is over).
    mutating func takeRefusal(owner: String) -> Bool {
        refused.remove(owner) != nil
    }

    /// Drops every pin of `owner`'s start; returns the directories that hold no pin any more,
    /// to unmark.
    mutating func release(owner: String) -> [String] {
        var touched = Set<String>()
        for path in pins.keys where pins[path]?[owner] != nil {
            pins[path]?[owner] = nil
            if pins[path]?.isEmpty == true { pins[path] = nil }
            touched.insert(Self.directory(of: path))
        }
        let held = Set(pins.keys.map(Self.directory(of:)))
        return touched.subtracting(held).sorted()
    }

    /// What an open of `path` that found `identity` gets.
    func judge(path: String, identity: Identity?) -> Judgement {
        guard let owners = pins[path] else { return .allow }
        for (owner, expected) in owners.sorted(by: { $0.key < $1.key }) where expected != identity {
            return .deny(owner: owner, expected: expected)
        }
        return .allow
    }

    var isEmpty: Bool { pins.isEmpty }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
