import Crypto
import Foundation
import UkeyClient
import UkeyDaemon
import UkeyHypervisor
import UkeyVarlink

/// The gate both enforcement points share (`ukey-libvirt-hook`, `ukey-qemu`): ask ukeyd to
/// measure everything a guest will load, in `DomainMapping`'s order, and say why not when any
/// answer is not `load: true`. Fails closed: a daemon that cannot be reached, an error reply or a
/// call that takes too long is a refusal.
public enum GuestGate {
    /// How long one answer from ukeyd may take (a large image is hashed within it).
    public static let callTimeout: TimeInterval = 300

    /// nil when the guest may start; otherwise the one line that says why not.
    public static func refusal(for mapping: DomainMapping, guest: String, socket: String = socketPath()) -> String? {
        let connection: VarlinkConnection
        do {
            connection = try VarlinkConnection(path: socket, timeout: callTimeout)
        } catch {
            return "ukey: refusing to start \(guest): ukeyd cannot be reached at \(socket) (\(error)); nothing vouches for this guest"
        }
        for step in mapping.steps {
            var parameters: [String: JSONValue] = ["entity": .string(step.entity), "component": .string(step.component)]
            switch step.source {
            case .file(let path): parameters["path"] = .string(path)
            case .text(let text): parameters["digest"] = .string("sha256:" + SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined())
            }
            if step.entity == mapping.vm, let session = mapping.session { parameters["session"] = .string(session) }
            let reply: [String: JSONValue]
            do {
                reply = try connection.call("io.ukey.Boot.Measure", parameters)
            } catch let error as VarlinkError {
                let reason = error.parameters["reason"]?.stringValue.map { ": \($0)" } ?? ""
                return "ukey: refusing to start \(guest): \(step.entity)/\(step.component): \(error.name)\(reason)"
            } catch {
                return "ukey: refusing to start \(guest): ukeyd did not answer for \(step.entity)/\(step.component) (\(error))"
            }
            guard reply["load"]?.boolValue == true else {
                let reason = reply["reason"]?.stringValue ?? "not trusted"
                return "ukey: refusing to start \(guest): \(step.entity)/\(step.component) is \(reply["verdict"]?.stringValue ?? "?") (\(reason))"
            }
        }
        return nil
    }

    /// As ukeyctl finds it: $UKEY_SOCKET, else the `[daemon] socket` of /etc/ukey/ukeyd.toml
    /// ($UKEY_CONFIG), else /run/ukey/ukeyd.sock.
    public static func socketPath() -> String {
        if let socket = ProcessInfo.processInfo.environment["UKEY_SOCKET"], !socket.isEmpty { return socket }
        let config = ProcessInfo.processInfo.environment["UKEY_CONFIG"] ?? "/etc/ukey/ukeyd.toml"
        if let text = try? String(contentsOfFile: config, encoding: .utf8), let file = try? ConfigFile(parsing: text),
            case .string(let socket)? = file["daemon.socket"]
        {
            return socket
        }
        return "/run/ukey/ukeyd.sock"
    }
}
