import Crypto
import Foundation
import UkeyClient
import UkeyDaemon
import UkeyHypervisor
import UkeyVarlink
#if canImport(Glibc)
import Glibc
#endif

/// `ukey-libvirt-hook`, installed as `/etc/libvirt/hooks/qemu.d/50-ukey`: libvirt runs it as
/// `50-ukey DOMAIN OPERATION SUB-OPERATION EXTRA` with the domain's XML on stdin, and refuses to
/// start a guest when it exits non-zero, showing its standard error to whoever ran `virsh start`.
///
/// On `prepare begin` it asks ukeyd to measure everything the domain loads, parents before
/// children (`DomainMapping`), and refuses the start when any reply says `load: false`, when
/// ukeyd cannot be reached or refuses to answer, or when the XML cannot be read. On `release end`
/// it tells ukeyd the guest stopped (`Boot.Release`). It never calls back into libvirt (libvirt's
/// hooks may not: it would deadlock), and each call to ukeyd is bounded in time. Every other
/// operation is let through.
@main
struct LibvirtHook {
    /// How long one answer from ukeyd may take (a large image is hashed within it).
    static let callTimeout: TimeInterval = 300

    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.count >= 2 else {
            refuse("usage: ukey-libvirt-hook DOMAIN OPERATION SUB-OPERATION EXTRA (libvirt's qemu hook), with the domain XML on stdin")
        }
        let domainName = arguments[0]
        if arguments[1] == "release", arguments.count < 3 || arguments[2] == "end" { release(domainName) }
        guard arguments[1] == "prepare", arguments.count < 3 || arguments[2] == "begin" else { exit(0) }
        let xml = readStandardInput(limit: DomainXML.maxBytes)
        let mapping: DomainMapping
        do {
            mapping = try DomainMapping(try DomainXML(parsing: xml))
        } catch {
            refuse("ukey: refusing to start \(domainName): \(error)")
        }
        let socket = socketPath()
        let connection: VarlinkConnection
        do {
            connection = try VarlinkConnection(path: socket, timeout: callTimeout)
        } catch {
            refuse("ukey: refusing to start \(domainName): ukeyd cannot be reached at \(socket) (\(error)); nothing vouches for this guest")
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
                refuse("ukey: refusing to start \(domainName): \(step.entity)/\(step.component): \(error.name)\(reason)")
            } catch {
                refuse("ukey: refusing to start \(domainName): ukeyd did not answer for \(step.entity)/\(step.component) (\(error))")
            }
            guard reply["load"]?.boolValue == true else {
                let reason = reply["reason"]?.stringValue ?? "not trusted"
                refuse("ukey: refusing to start \(domainName): \(step.entity)/\(step.component) is \(reply["verdict"]?.stringValue ?? "?") (\(reason))")
            }
        }
        exit(0)
    }

    /// The guest stopped: ukeyd measures it afresh on its next start (a tainted one stays tainted).
    /// libvirt does not act on this exit status; a failure is said on standard error.
    static func release(_ domainName: String) -> Never {
        let vm: String
        do {
            let domain = try DomainXML(parsing: readStandardInput(limit: DomainXML.maxBytes))
            vm = domain.entity ?? domain.name
        } catch {
            FileHandle.standardError.write(Data("ukey: cannot release \(domainName): \(error)\n".utf8))
            exit(0)
        }
        do {
            let reply = try VarlinkConnection(path: socketPath(), timeout: 30).call("io.ukey.Boot.Release", ["entity": .string(vm)])
            if reply["state"]?.stringValue == "untrusted" {
                FileHandle.standardError.write(Data("ukey: \(vm) stays untrusted for this boot (\(reply["reason"]?.stringValue ?? "?"))\n".utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("ukey: cannot release \(vm): \(error)\n".utf8))
        }
        exit(0)
    }

    /// One line on standard error, which libvirt shows in its refusal, then exit 1.
    static func refuse(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(1)
    }

    /// Standard input, at most `limit` bytes; more is refused (libvirt's domain XML is far smaller).
    static func readStandardInput(limit: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += buffer[0..<n]
            if bytes.count > limit { refuse("ukey: the domain XML on stdin is longer than \(limit) bytes") }
        }
        return bytes
    }

    /// As ukeyctl finds it: $UKEY_SOCKET, else the `[daemon] socket` of /etc/ukey/ukeyd.toml, else
    /// /run/ukey/ukeyd.sock.
    static func socketPath() -> String {
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
