import Foundation
import UkeyGuestGate
import UkeyHypervisor
#if canImport(Glibc)
import Glibc
#endif

/// `ukey-qemu QEMU-ARGUMENTS...`: the libvirt hook's gate for hosts without libvirt. It reads what
/// the qemu command line loads (`QemuCommandLine`), asks ukeyd to measure all of it, parents first,
/// and only when every answer says `load: true` replaces itself with the real qemu (`$UKEY_QEMU`,
/// else `qemu-system-x86_64` from PATH) with the arguments unchanged. Otherwise it exits 1 with
/// the reason, and qemu never runs. The guest's entity is `$UKEY_ENTITY`, else qemu's `-name`; a
/// user VM's session is `$UKEY_SESSION`.
@main
struct UkeyQemu {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let environment = ProcessInfo.processInfo.environment
        let mapping: DomainMapping
        let guest: DomainXML
        do {
            guest = try QemuCommandLine.guest(arguments, entity: environment["UKEY_ENTITY"], session: environment["UKEY_SESSION"])
            mapping = try DomainMapping(guest)
        } catch {
            refuse("ukey-qemu: refusing to start qemu: \(error)")
        }
        if let refusal = GuestGate.refusal(for: mapping, guest: guest.name) { refuse(refusal.replacingOccurrences(of: "ukey: ", with: "ukey-qemu: ")) }
        let qemu = environment["UKEY_QEMU"] ?? "qemu-system-x86_64"
        let argv = ([qemu] + arguments).map { strdup($0) } + [nil]
        execvp(qemu, argv)
        refuse("ukey-qemu: cannot run \(qemu): \(String(cString: strerror(errno)))")
    }

    static func refuse(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(1)
    }
}
