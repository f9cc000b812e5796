import Crypto
import Foundation
import UkeyAPI
import UkeyClient
import UkeyConfig
import UkeyHypervisor
import UkeyVarlink

/// The gate both enforcement points share (`ukey-libvirt-hook`, `ukey-qemu`): ask ukeyd to
/// measure everything a guest will load, in `DomainMapping`'s order, and say why not when any
/// answer is not `load: true`. Every file is measured with `hold`: ukeyd then refuses QEMU's
/// open of any of them that finds another file than the one hashed, until the VM is started or
/// released. Fails closed: a daemon that cannot be reached, an error reply or a call that takes
/// too long is a refusal.
public enum GuestGate {
    /// How long one answer from ukeyd may take (a large image is hashed within it).
    public static let callTimeout: TimeInterval = 300

    /// nil when the guest may start; otherwise the one line that says why not.
    public static func refusal(for mapping: DomainMapping, guest: String, socket: String = socketPath()) -> String? {
        let connection: VarlinkConnection
        do {
            connection = try VarlinkConnection(path: socket, timeout: callTimeout)
        } catch {
            return
                "ukey: refusing to start \(guest): ukeyd cannot be reached at \(socket) (\(error)); nothing vouches for this guest"
        }

        for step in mapping.steps {
            var request = Boot.Measure.Request(entity: step.entity, component: step.component)
            switch step.source {
            case .file(let path):
                request.path = path
                request.hold = mapping.vm
            case .text(let text):
                request.digest =
                    "sha256:" + SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
            }
            if step.entity == mapping.vm { request.session = mapping.session }
            let reply: Boot.Measure.Reply
            do {
                reply = try connection.call(Boot.Measure.self, request)
            } catch let error as APIError {
                let reason = error.parameters["reason"]?.stringValue.map { ": \($0)" } ?? ""
                return "ukey: refusing to start \(guest): \(step.entity)/\(step.component): \(error.name)\(reason)"
            } catch {
                return
                    "ukey: refusing to start \(guest): ukeyd did not answer for \(step.entity)/\(step.component) (\(error))"
            }
            guard reply.load else {
                return
                    "ukey: refusing to start \(guest): \(step.entity)/\(step.component) is \(reply.verdict) (\(reply.reason ?? "not trusted"))"
            }
        }
        return nil
    }

    /// When the guest's TPM is the vTPM ukeyd runs for it, has ukeyd start it: after every
    /// measurement said `load: true`, and ukeyd checks again that the VM's start is trusted (in
    /// audit mode too: the vTPM's state key goes to a trusted start only). nil when it runs (or
    /// the guest has none); otherwise the refusal.
    public static func startVTPM(for mapping: DomainMapping, guest: String, socket: String = socketPath()) -> String? {
        guard mapping.vtpm else { return nil }
        do {
            _ = try VarlinkConnection(path: socket, timeout: callTimeout).call(
                VTPM.Start.self,
                .init(entity: mapping.vm)
            )
            return nil
        } catch let error as APIError {
            let reason = error.parameters["reason"]?.stringValue ?? error.name
            return "ukey: refusing to start \(guest): no vTPM for \(mapping.vm): \(reason)"
        } catch {
            return "ukey: refusing to start \(guest): ukeyd did not start \(mapping.vm)'s vTPM (\(error))"
        }
    }

    /// A new start of `vm` begins: nothing an earlier attempt of it had held stays held (an
    /// attempt that reached neither started nor release would otherwise hold files the operator
    /// changed since, and the gate's own reading of their headers would be refused). Called
    /// before the gate reads the images; best effort (ukeyd down is the measurement's refusal).
    public static func begin(_ vm: String, socket: String = socketPath()) {
        _ = try? VarlinkConnection(path: socket, timeout: 30).call(
            Boot.Started.self,
            .init(entity: vm, phase: "begin")
        )
    }

    /// Tells ukeyd the VM's QEMU is up (its files opened): what was held for its start is let
    /// go, and the VM's writable state will be sealed when it stops. Best effort: a failure
    /// leaves the files held until the VM is released, and its state unsealed.
    public static func started(_ vm: String, socket: String = socketPath()) -> String? {
        do {
            _ = try VarlinkConnection(path: socket, timeout: 30).call(Boot.Started.self, .init(entity: vm))
            return nil
        } catch {
            return "ukey: cannot tell ukeyd that \(vm) started: \(error)"
        }
    }

    /// How long a release may take: ukeyd hashes the VM's writable disks to seal them.
    public static let releaseTimeout: TimeInterval = 300

    /// Tells ukeyd the VM stopped: it seals the VM's writable state and releases it. The
    /// problem to say, if any (a call that failed, or a state left unsealed); nil when all went.
    public static func release(_ vm: String, socket: String = socketPath()) -> String? {
        let reply: Boot.Release.Reply
        do {
            reply = try VarlinkConnection(path: socket, timeout: releaseTimeout).call(
                Boot.Release.self,
                .init(entity: vm)
            )
        } catch {
            return
                "ukey: cannot release \(vm): \(error); its disk is not sealed, so its next start is refused until it is accepted (ukeyctl vm accept \(vm))"
        }
        var problems: [String] = []
        if reply.state == "untrusted" {
            problems.append("ukey: \(vm) stays untrusted for this boot (\(reply.reason ?? "?"))")
        }
        for unsealed in reply.unsealed {
            problems.append("ukey: \(vm)/\(unsealed.component) not sealed: \(unsealed.reason)")
        }
        return problems.isEmpty ? nil : problems.joined(separator: "\n")
    }

    /// As ukeyctl finds it: $UKEY_SOCKET, else the `[daemon] socket` of /etc/ukey/ukeyd.toml
    /// ($UKEY_CONFIG), else /run/ukey/ukeyd.sock.
    public static func socketPath() -> String {
        if let socket = ProcessInfo.processInfo.environment["UKEY_SOCKET"], !socket.isEmpty { return socket }
        if case .string(let socket)? = config()?["daemon.socket"] { return socket }
        return "/run/ukey/ukeyd.sock"
    }

    /// Where ukeyd serves guard channels: $UKEY_GUARD_DIR, else `[guard] guest-sockets` of the
    /// config, else guard/ in its `[daemon] runtime-dir`, else /run/ukey/guard.
    public static func guardDirectory() -> String {
        if let directory = ProcessInfo.processInfo.environment["UKEY_GUARD_DIR"], !directory.isEmpty {
            return directory
        }
        let file = config()
        if case .string(let directory)? = file?["guard.guest-sockets"] { return directory }
        if case .string(let runtime)? = file?["daemon.runtime-dir"] { return runtime + "/guard" }
        return "/run/ukey/guard"
    }

    /// Where ukeyd runs the VMs' vTPMs: $UKEY_VTPM_DIR, else `[vtpm] sockets` of the config,
    /// else vtpm/ in its `[daemon] runtime-dir`, else /run/ukey/vtpm.
    public static func vtpmDirectory() -> String {
        if let directory = ProcessInfo.processInfo.environment["UKEY_VTPM_DIR"], !directory.isEmpty {
            return directory
        }
        let file = config()
        if case .string(let directory)? = file?["vtpm.sockets"] { return directory }
        if case .string(let runtime)? = file?["daemon.runtime-dir"] { return runtime + "/vtpm" }
        return "/run/ukey/vtpm"
    }

    static func config() -> ConfigFile? {
        let path = ProcessInfo.processInfo.environment["UKEY_CONFIG"] ?? "/etc/ukey/ukeyd.toml"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return try? ConfigFile(parsing: text)
    }
}
