import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import UkeyAudit
import UkeyVarlink

/// ukeyd's end of each VM's guard channel: a virtio-serial port whose host side QEMU (or libvirt
/// for it) binds as a Unix socket in `directory`, named `<vm>.sock` after the VM's entity
/// (`<channel type='unix'><source mode='bind' path='/run/ukey/guard/office.sock'/><target
/// type='virtio' name='io.ukey.guard.0'/></channel>`). QEMU listens, so ukeyd connects: it looks
/// at the directory every `scanInterval` and connects to each socket it is not yet serving.
///
/// The VM is known from the socket alone, never from what the guest writes: `GuestCallGate`
/// lets through only CheckExec, CheckExecBatch and GuardEvent, each about that VM. Calls are
/// answered one at a time, in order, by the same `ConnectionDriver` as the socket's; a message
/// that does not parse is answered with an error and the stream goes on (a guard that died
/// mid-write leaves half a message, and the next NUL ends it).
///
/// A connection is the VM's only while the VM is: it is dropped when the VM is released (it
/// stopped) or when its socket is replaced (another QEMU bound the name), and the next scan
/// serves whatever is there then. The guard in the guest asks every second; a channel that falls
/// silent, or closes, while its guard runs is a lost guard (`GuardRegistry`).
public struct GuestChannels: Sendable {
    public let directory: String
    let dispatcher: Dispatcher
    let logger: Logger
    static let scanInterval: Duration = .seconds(1)
    /// A batch of `CheckExecBatch.maxItems` paths fits; a guest sending more is cut off.
    static let messageLimit = 8 << 20

    public init(directory: String, dispatcher: Dispatcher, logger: Logger) {
        self.directory = directory
        self.dispatcher = dispatcher
        self.logger = logger
    }

    /// A served channel: the socket it was made to and the VM's releases then, to tell when it
    /// is no longer the VM's.
    struct Live: Sendable {
        let inode: UInt64
        let releases: UInt64
        let channel: any Channel
    }

    /// What the scan and the channels' tasks share.
    final class Served: Sendable {
        /// The VMs whose channel a task serves, or tries to.
        let serving = Mutex<Set<String>>([])
        /// The VMs whose socket could not be reached, said once.
        let unreachable = Mutex<Set<String>>([])
        let live = Mutex<[String: Live]>([:])
    }

    /// Serves every channel until cancelled.
    public func run() async {
        let served = Served()
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                dropStale(served)
                for vm in socketNames() where served.serving.withLock({ $0.insert(vm).inserted }) {
                    group.addTask {
                        defer { served.serving.withLock { _ = $0.remove(vm) } }
                        do {
                            try await serve(vm: vm, served: served)
                            served.unreachable.withLock { _ = $0.remove(vm) }
                        } catch {
                            // A socket left by a VM that stopped: said once, tried again each scan.
                            if served.unreachable.withLock({ $0.insert(vm).inserted }) {
                                logger.info("guard channel of \(vm): \(error)")
                            }
                        }
                    }
                }
                guard (try? await Task.sleep(for: Self.scanInterval)) != nil else { break }
            }
            group.cancelAll()
        }
    }

    /// The VMs whose channel socket is in the directory: `<entity>.sock`, entity names only.
    func socketNames() -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.compactMap { name in
            guard name.hasSuffix(".sock") else { return nil }
            let vm = String(name.dropLast(5))
            guard (1...64).contains(vm.utf8.count), vm.utf8.allSatisfy({ Self.nameBytes.contains($0) }) else {
                return nil
            }
            var info = stat()
            guard lstat("\(directory)/\(name)", &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return nil }
            return vm
        }
    }

    static let nameBytes = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".utf8)

    /// Closes each connection whose VM was released since it was made, or whose socket is gone
    /// or was replaced by another (a new inode at the name).
    func dropStale(_ served: Served) {
        let releases = dispatcher.services.boot.releases.withLock { $0 }
        let stale = served.live.withLock { entries in
            entries.filter { vm, entry in
                entry.releases != releases[vm, default: 0] || Self.inode(of: "\(directory)/\(vm).sock") != entry.inode
            }
        }
        for (vm, entry) in stale {
            logger.notice(
                "guard channel of \(vm): dropped (\(entry.releases != releases[vm, default: 0] ? "the VM was released" : "its socket was replaced or removed"))"
            )
            entry.channel.close(promise: nil)
        }
    }

    static func inode(of path: String) -> UInt64? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    private func serve(vm: String, served: Served) async throws {
        let path = "\(directory)/\(vm).sock"
        // Taken before the connection: a socket replaced in between is dropped at the next scan.
        let inode = Self.inode(of: path) ?? 0
        let releases = dispatcher.services.boot.releases.withLock { $0[vm, default: 0] }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(unixDomainSocketPath: path) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let credentials = try? await PeerCredentials.of(channel.channel).get()
        // Role hypervisor: CheckExec's; the gate, not the role, limits what the guest may ask.
        let caller = Caller(
            uid: credentials?.uid ?? .max,
            gid: credentials?.gid ?? .max,
            pid: credentials?.pid ?? 0,
            roles: [.hypervisor],
            guest: vm
        )
        logger.notice("guard channel of \(vm) open (\(path))")
        served.live.withLock { $0[vm] = Live(inode: inode, releases: releases, channel: channel.channel) }
        let presence = ChannelGuard(vm: vm, registry: dispatcher.services.guards)
        let watchdog = Task { [logger, services = dispatcher.services] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if let reason = presence.silent() {
                    await Self.recordLost(vm: vm, reason: reason, services: services, logger: logger)
                }
            }
        }
        defer {
            watchdog.cancel()
            served.live.withLock { _ = $0.removeValue(forKey: vm) }
            logger.notice("guard channel of \(vm) closed")
        }
        defer {
            if let reason = presence.closed() {
                let services = dispatcher.services
                let logger = logger
                Task { await Self.recordLost(vm: vm, reason: reason, services: services, logger: logger) }
            }
        }
        let driver = ConnectionDriver(
            dispatcher: dispatcher,
            caller: caller,
            peer: "guard channel of \(vm)",
            logger: logger,
            admit: { [logger] call in
                presence.heard(call)
                switch GuestCallGate.admit(call, vm: vm) {
                case .forward(let bound):
                    return .dispatch(bound)
                case .refuse(let reason):
                    logger.notice("guard channel of \(vm): refused \(call.method): \(reason)")
                    return .refuse
                }
            }
        )
        // One call at a time, and a message that breaks the protocol is answered, not the end.
        let control = ConnectionControl(
            channel: channel.channel,
            .init(messageLimit: Self.messageLimit, maxInFlight: 1, protocolErrors: .answer)
        )
        try await withTaskCancellationHandler {
            try await channel.executeThenClose { inbound, outbound in
                try await driver.run(control, inbound: inbound, outbound: outbound)
            }
        } onCancel: {
            channel.channel.close(promise: nil)
        }
    }

    static func recordLost(vm: String, reason: String, services: DaemonServices, logger: Logger) async {
        logger.warning("exec guard in \(vm) is gone without a stop (\(reason)): execs there are no longer held")
        await services.audit.record(
            "guard",
            ["vm": .string(vm), "event": "lost", "via": "channel", "reason": .string(reason)],
            logger: logger
        )
    }

    /// Makes the directory QEMU binds the sockets in: root's, group the hypervisor group (QEMU
    /// runs in it), 0750 or 0770 for that group to create sockets; never writable by others.
    public static func prepare(_ directory: String, hypervisorGroup: String?) throws {
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o750]
        )
        if let hypervisorGroup, let gid = RolePolicy.groupID(hypervisorGroup) {
            chown(directory, 0, gid)
            chmod(directory, 0o770)
        } else {
            chmod(directory, 0o750)
        }
    }
}
