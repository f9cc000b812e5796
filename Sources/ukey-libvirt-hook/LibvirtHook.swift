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
/// - `prepare begin` (before libvirt touches the domain's files): reads the XML default-deny
///   (`DomainXML`: what it does not understand in a place that can name a host file, it refuses,
///   naming it), then asks ukeyd to measure everything the domain loads, parents before children
///   (`DomainMapping`), each file held to the identity ukeyd hashed until QEMU opened it; refuses
///   the start when any reply says `load: false`, when ukeyd cannot be reached or refuses to
///   answer, or when the XML cannot be read. A guest whose TPM is ukeyd's vTPM for it
///   (`<tpm><backend type='external'>` on `<vtpm directory>/<vm>.sock`) then has ukeyd start that
///   vTPM, which ukeyd does only for a trusted start; any other external TPM is refused.
/// - `started begin` (QEMU has opened its files): ukeyd stops holding them (`Boot.Started`).
/// - `release end` (QEMU is gone, whether the guest shut down, crashed or was destroyed): ukeyd
///   seals the VM's writable disks as its state, stops its vTPM and releases it (`Boot.Release`).
/// - `restore begin`, `migrate begin`: refused. The guest would start from a saved memory image
///   or a migration stream, which ukey cannot measure. (Nothing is written on stdout: for these
///   operations libvirt would take it as a new domain XML.)
/// Every other operation is let through. It never calls back into libvirt (libvirt's hooks may
/// not: it would deadlock), and each call to ukeyd is bounded in time.
@main
struct LibvirtHook {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.count >= 2 else {
            refuse(
                "usage: ukey-libvirt-hook DOMAIN OPERATION SUB-OPERATION EXTRA (libvirt's qemu hook), with the domain XML on stdin"
            )
        }
        let domainName = arguments[0]
        let operation = arguments[1]
        let phase = arguments.count >= 3 ? arguments[2] : "begin"
        switch (operation, phase) {
        case ("prepare", "begin"): prepare(domainName)
        case ("started", "begin"): started(domainName)
        case ("release", "end"): release(domainName)
        case ("restore", "begin"):
            refuse(
                "ukey: refusing to restore \(domainName) from a saved state, which ukey cannot measure; discard it (virsh managedsave-remove \(domainName)) and start the guest afresh"
            )
        case ("migrate", "begin"):
            refuse(
                "ukey: refusing an incoming migration of \(domainName): its memory comes from another host, which ukey cannot measure"
            )
        default: exit(0)
        }
    }

    static func prepare(_ domainName: String) -> Never {
        let xml = readStandardInput(limit: DomainXML.maxBytes)
        let mapping: DomainMapping
        do {
            let domain = try DomainXML(parsing: xml)
            // libvirt creates a missing varstore from its template after this hook ran: what it
            // would create is not measured here, so the varstore must be there to be measured.
            if let nvram = domain.nvram, access(nvram, F_OK) != 0 {
                refuse(
                    "ukey: refusing to start \(domainName): its NVRAM varstore \(nvram) does not exist yet, and libvirt would make it after ukey measured\(domain.nvramTemplate.map { "; create it (cp \($0) \(nvram)) and enrol it" } ?? "")"
                )
            }
            GuestGate.begin(domain.entity ?? domain.name)
            mapping = try DomainMapping(
                domain,
                guardDirectory: GuestGate.guardDirectory(),
                vtpmDirectory: GuestGate.vtpmDirectory()
            )
        } catch {
            refuse("ukey: refusing to start \(domainName): \(error)")
        }
        if let refusal = GuestGate.refusal(for: mapping, guest: domainName) { refuse(refusal) }
        if let refusal = GuestGate.startVTPM(for: mapping, guest: domainName) { refuse(refusal) }
        exit(0)
    }

    /// QEMU has opened what it loads; libvirt does not act on this exit status.
    static func started(_ domainName: String) -> Never {
        guard let domain = try? DomainXML(parsing: readStandardInput(limit: DomainXML.maxBytes)) else { exit(0) }
        if let problem = GuestGate.started(domain.entity ?? domain.name) {
            FileHandle.standardError.write(Data((problem + "\n").utf8))
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
            // A domain the gate refused to read was never measured: the name is all there is to release.
            vm = domainName
        }
        if let problem = GuestGate.release(vm) { FileHandle.standardError.write(Data((problem + "\n").utf8)) }
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
