import CFanotify
import Foundation
import Synchronization

/// Closes the window between ukeyd's hash of a VM's file and QEMU's open of it: while a VM
/// starts, every open in the directory of each file measured for it is held by the kernel
/// (fanotify FAN_OPEN_PERM on the directory, FAN_EVENT_ON_CHILD) until this guard answers, and an
/// open of a measured path that finds another file than the one hashed, or the file changed, is
/// refused (EPERM) and recorded. So a file renamed into place after the hash is never what QEMU
/// loads, while the audit log says the good digest was. Paths whose directories others could
/// replace are refused at measurement (`SecurePath`), so no rename further up escapes the marks.
///
/// Why marks on directories and not on the files: a mark on a file's inode follows that inode,
/// and the swapped-in file is another inode; a mark on the whole file system would hold every
/// open on the host. Why not hand QEMU descriptors: libvirt opens nothing for QEMU's disks,
/// kernel or firmware (QEMU opens them by path, from the XML), and a hook cannot change that.
///
/// Its thread answers every held open at once from `IdentityPins` (a lookup under a mutex, an
/// fstat and a readlink); ukeyd's own opens are let through. If ukeyd dies, the kernel allows
/// everything again: the pins protect a start in progress, and a start needs ukeyd anyway.
final class OpenGuard: Sendable {
    struct Denial: Sendable {
        let path: String
        let owner: String
        let pid: Int32
        let expected: IdentityPins.Identity
        let found: IdentityPins.Identity?
    }

    struct Failure: Error, CustomStringConvertible, Sendable {
        let description: String
    }

    private let pins = Mutex(IdentityPins())
    private let group: Int32
    private let onDenial: @Sendable (Denial) -> Void

    init(onDenial: @escaping @Sendable (Denial) -> Void) throws(Failure) {
        let fd = fanotify_init(UInt32(FAN_CLASS_CONTENT | FAN_CLOEXEC), UInt32(O_RDONLY | O_CLOEXEC))
        guard fd >= 0 else {
            throw Failure(
                description:
                    "fanotify_init: \(String(cString: strerror(errno))) (holding a measured file's identity until QEMU opens it needs CAP_SYS_ADMIN)"
            )
        }
        group = fd
        self.onDenial = onDenial
        let thread = Thread { [self] in serve() }
        thread.name = "ukey.open-guard"
        thread.start()
    }

    /// Pins `path` for `owner`'s start with the identity of the descriptor that was hashed.
    func hold(_ path: String, owner: String, identity: IdentityPins.Identity) throws(Failure) {
        // The mark goes on before the pin is published and stays while any pin needs it.
        try pins.withLock { (pins: inout IdentityPins) throws(Failure) in
            if let directory = pins.pin(path, owner: owner, identity: identity) {
                let mask = UInt64(FAN_OPEN_PERM) | UInt64(FAN_EVENT_ON_CHILD)
                guard fanotify_mark(group, UInt32(FAN_MARK_ADD | FAN_MARK_ONLYDIR), mask, AT_FDCWD, directory) == 0
                else {
                    let why = String(cString: strerror(errno))
                    _ = pins.release(owner: owner)
                    throw Failure(description: "cannot watch \(directory): \(why)")
                }
            }
        }
    }

    /// Drops `owner`'s pins (its QEMU has opened its files, or it stopped): how many paths it
    /// held, and whether an open of one was refused since they were pinned.
    @discardableResult
    func release(owner: String) -> (held: Int, refused: Bool) {
        pins.withLock { pins in
            let held = pins.pins.values.filter { $0[owner] != nil }.count
            for directory in pins.release(owner: owner) {
                let mask = UInt64(FAN_OPEN_PERM) | UInt64(FAN_EVENT_ON_CHILD)
                _ = fanotify_mark(group, UInt32(FAN_MARK_REMOVE | FAN_MARK_ONLYDIR), mask, AT_FDCWD, directory)
            }
            return (held, pins.takeRefusal(owner: owner))
        }
    }

    var heldPaths: Int { pins.withLock { $0.pins.count } }

    /// The thread: read held opens, answer each. Runs for the daemon's life.
    private func serve() {
        let own = getpid()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 8)
        defer { buffer.deallocate() }
        let headerSize = MemoryLayout<fanotify_event_metadata>.size
        while true {
            let count = read(group, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            var offset = 0
            while offset + headerSize <= count {
                let metadata = buffer.loadUnaligned(fromByteOffset: offset, as: fanotify_event_metadata.self)
                guard metadata.event_len >= headerSize else { break }
                offset += Int(metadata.event_len)
                guard metadata.fd >= 0 else { continue }
                var allow = true
                if metadata.pid != own, metadata.mask & UInt64(FAN_OPEN_PERM) != 0 {
                    let identity = IdentityPins.Identity(descriptor: metadata.fd)
                    let path = Self.path(of: metadata.fd)
                    // A descriptor that cannot be looked at is judged as no file: refused at a pinned path.
                    let judgement = pins.withLock { pins in
                        let judgement = pins.judge(path: path, identity: identity)
                        if case .deny(let owner, _) = judgement { pins.noteRefusal(owner: owner) }
                        return judgement
                    }
                    if case .deny(let owner, let expected) = judgement {
                        allow = false
                        onDenial(
                            Denial(path: path, owner: owner, pid: metadata.pid, expected: expected, found: identity)
                        )
                    }
                }
                var response = fanotify_response(fd: metadata.fd, response: UInt32(allow ? FAN_ALLOW : FAN_DENY))
                _ = withUnsafeBytes(of: &response) { write(group, $0.baseAddress, $0.count) }
                close(metadata.fd)
            }
        }
    }

    /// The path the kernel gives for a held descriptor (/proc is never marked).
    static func path(of descriptor: Int32) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(PATH_MAX) + 1) { buffer in
            let count = readlink("/proc/self/fd/\(descriptor)", buffer.baseAddress!, buffer.count - 1)
            guard count > 0 else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress!, count: count), as: UTF8.self)
        }
    }
}

/// The daemon's open guard, made at the first measurement that asks for it (it needs
/// CAP_SYS_ADMIN, which a test daemon run as a user lacks; a measurement that asks is then
/// refused, failing closed).
final class OpenGuardHolder: Sendable {
    private let guardian = Mutex<Result<OpenGuard, OpenGuard.Failure>?>(nil)
    private let onDenial: @Sendable (OpenGuard.Denial) -> Void

    init(onDenial: @escaping @Sendable (OpenGuard.Denial) -> Void) {
        self.onDenial = onDenial
    }

    func get() throws(OpenGuard.Failure) -> OpenGuard {
        let result = guardian.withLock { (made: inout Result<OpenGuard, OpenGuard.Failure>?) in
            if made == nil || (try? made?.get()) == nil {
                do throws(OpenGuard.Failure) {
                    made = .success(try OpenGuard(onDenial: onDenial))
                } catch {
                    made = .failure(error)
                }
            }
            return made!
        }
        return try result.get()
    }

    /// Drops `owner`'s pins, if a guard was ever made: how many, and whether an open was refused.
    @discardableResult
    func release(owner: String) -> (held: Int, refused: Bool) {
        let made = guardian.withLock { try? $0?.get() }
        return made?.release(owner: owner) ?? (0, false)
    }
}
