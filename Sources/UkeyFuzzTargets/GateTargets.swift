import UkeyGuard
import UkeyHypervisor

extension FuzzTarget {
    /// A qemu command line (arguments split at NUL bytes), as ukey-qemu reads it.
    static let qemuCommandLine = FuzzTarget(
        name: "qemu-command-line",
        property:
            "a command line is taken only with every file it measures named by an absolute path that is no json: or protocol name, and read the same twice; a refusal is a reason, never a crash",
        check: { bytes throws(FuzzFailure) in
            let arguments = bytes.split(separator: 0, omittingEmptySubsequences: false).prefix(256).map {
                String(decoding: $0, as: UTF8.self)
            }
            let guest: DomainXML
            do {
                guest = try QemuCommandLine.guest(
                    arguments,
                    entity: nil,
                    session: nil,
                    defaultFirmware: "/usr/share/seabios/bios-256k.bin"
                )
            } catch {
                try require(!"\(error)".isEmpty, "an empty refusal")
                return
            }
            let measured =
                [guest.kernel, guest.initrd, guest.loader, guest.dtb].compactMap { $0 }
                + guest.disks.compactMap(\.source)
            for path in measured {
                try require(
                    path.hasPrefix("/") && !path.hasPrefix("json:"),
                    "measured '\(path)', which is not an absolute path"
                )
                if let colon = path.firstIndex(of: ":") {
                    try require(path[..<colon].contains("/"), "measured '\(path)', which QEMU reads as a protocol")
                }
            }
            let again = try? QemuCommandLine.guest(
                arguments,
                entity: nil,
                session: nil,
                defaultFirmware: "/usr/share/seabios/bios-256k.bin"
            )
            try require(again == guest, "read differently the second time")
        },
        seeds: {
            [
                Array(
                    "-name\0office\0-machine\0accel=tcg\0-m\0768\0-kernel\0/img/vmlinuz\0-initrd\0/img/initrd.gz\0-append\0console=ttyS0\0-drive\0file=/img/office.qcow2,format=qcow2,if=virtio\0-display\0none"
                        .utf8
                ),
                Array(
                    #"-name\#0vm\#0-blockdev\#0{"driver":"file","file\u006eame":"/img/d.raw",'node-name':'d'}\#0-device\#0virtio-net-pci,netdev=n,romfile=\#0-netdev\#0user,id=n"#
                        .utf8
                ),
            ]
        }
    )

    /// A libvirt domain's XML, as the hook reads it.
    static let domainXML = FuzzTarget(
        name: "domain-xml",
        property:
            "a domain is taken only with its firmware measured and every file it measures named by an absolute path; read the same twice; its mapping either asks questions or refuses with a reason",
        check: { bytes throws(FuzzFailure) in
            let domain: DomainXML
            do {
                domain = try DomainXML(parsing: bytes, defaultFirmware: "/usr/share/seabios/bios-256k.bin")
            } catch {
                try require(!"\(error)".isEmpty, "an empty refusal")
                return
            }
            try require(domain.loader != nil, "a domain taken with no firmware measured")
            for path in [domain.kernel, domain.initrd, domain.loader, domain.dtb, domain.nvram, domain.nvramTemplate]
                .compactMap({ $0 }) + domain.disks.compactMap(\.source)
            {
                try require(path.hasPrefix("/"), "measured '\(path)', which is not an absolute path")
            }
            let again = try? DomainXML(parsing: bytes, defaultFirmware: "/usr/share/seabios/bios-256k.bin")
            try require(again == domain, "read differently the second time")
            do {
                _ = try DomainMapping(domain, guardDirectory: "/run/ukey/guard") {
                    (path: String, format: String?) throws(HypervisorError) -> [BackingChain.Layer] in
                    [BackingChain.Layer(path: path, format: format ?? "raw")]
                }
            } catch {
                try require(!"\(error)".isEmpty, "an empty refusal")
            }
        },
        seeds: {
            [
                Array(
                    """
                    <domain type='qemu'><name>office-1</name><metadata><ukey:entity xmlns:ukey="https://ukey.dev/libvirt/1" session="s">office</ukey:entity></metadata>\
                    <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type><kernel>/img/vmlinuz</kernel><initrd>/img/initrd.gz</initrd><cmdline>console=ttyS0</cmdline></os>\
                    <devices><emulator>/usr/bin/qemu-system-x86_64</emulator><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/office.qcow2'/>\
                    <backingStore type='file'><format type='qcow2'/><source file='/img/base.qcow2'/><backingStore/></backingStore><target dev='vda' bus='virtio'/></disk>\
                    <serial type='file'><source path='/var/log/c.log'/><target port='0'/></serial>\
                    <channel type='unix'><source mode='bind' path='/run/ukey/guard/office.sock'/><target type='virtio' name='io.ukey.guard.0'/></channel></devices></domain>
                    """.utf8
                ),
                Array(
                    """
                    <domain type='kvm'><name>efi</name><os><type arch='x86_64' machine='q35'>hvm</type><loader readonly='yes' type='pflash'>/fw/CODE.fd</loader>\
                    <nvram template='/fw/VARS.fd'>/var/lib/libvirt/qemu/nvram/efi_VARS.fd</nvram><acpi><table type='slic'>/fw/slic.bin</table></acpi></os>\
                    <devices><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng></devices></domain>
                    """.utf8
                ),
            ]
        }
    )

    /// A qcow2 image's first bytes.
    static let qcow2Header = FuzzTarget(
        name: "qcow2-header",
        property:
            "the backing file taken is the bytes at the header's offset and size (big-endian at 8 and 16), and none when either is zero",
        check: { bytes throws(FuzzFailure) in
            guard let header = try? QCOW2Header(parsing: bytes) else { return }
            let offset = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
            let size = Int(bytes[16..<20].reduce(0) { $0 << 8 | UInt32($1) })
            if offset == 0 || size == 0 {
                try require(header.backingFile == nil, "a backing file with no offset or size")
            } else {
                try require(
                    header.backingFile == String(decoding: bytes[Int(offset)..<(Int(offset) + size)], as: UTF8.self),
                    "the backing file is not the bytes the header points at"
                )
            }
        },
        seeds: {
            var header = QCOW2Header.magic + [0, 0, 0, 3]
            header += [0, 0, 0, 0, 0, 0, 0, 128] + [0, 0, 0, 9]
            header += [UInt8](repeating: 0, count: 100 - header.count) + [0, 0, 0, 104]
            header +=
                [0xE2, 0x79, 0x2A, 0xCA, 0, 0, 0, 5] + Array("qcow2".utf8) + [0, 0, 0] + [UInt8](repeating: 0, count: 8)
            return [header + Array("base.img!".utf8)]
        }
    )

    /// /proc/self/mountinfo, as ukey-guard reads it to mark every file system.
    static let mountTable = FuzzTarget(
        name: "mount-table",
        property:
            "each file system is marked once (no device twice), never one of the kernel's own views, and only from a line that has mountinfo's separator",
        check: { bytes throws(FuzzFailure) in
            let table = MountTable(parsing: String(decoding: bytes, as: UTF8.self))
            let marked = table.programFileSystems
            try require(Set(marked.map(\.device)).count == marked.count, "a device marked twice")
            try require(marked.allSatisfy { !MountTable.pseudoTypes.contains($0.type) }, "a pseudo file system marked")
            try require(table.mounts.count <= MountTable.maxMounts, "more mounts than the bound")
        },
        seeds: {
            [
                Array(
                    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n25 24 0:22 / /dev/shm rw shared:4 - tmpfs tmpfs rw\n23 1 0:21 / /proc rw - proc proc rw\n27 22 8:1 /home /mnt/a\\040b rw - ext4 /dev/sda1 rw\n"
                        .utf8
                )
            ]
        }
    )
}
