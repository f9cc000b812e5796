import Foundation
import UkeyClient
import UkeyGuestGate
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
        if let refusal = GuestGate.refusal(for: mapping, guest: domainName) { refuse(refusal) }
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
            let reply = try VarlinkConnection(path: GuestGate.socketPath(), timeout: 30).call("io.ukey.Boot.Release", ["entity": .string(vm)])
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
}
