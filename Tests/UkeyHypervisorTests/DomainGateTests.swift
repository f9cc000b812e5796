import Foundation
import Testing
import UkeyHypervisor
import UkeyTesting

/// The hook reads a domain default-deny: each element that can make QEMU read a host file is
/// measured or refused by name. Each refused case is one a review started past the old reader
/// with `virsh create` (the e2e repeats the main ones against real libvirt and QEMU).
@Suite("libvirt domains: what the hook does not account for, it refuses by name")
struct DomainGateTests {
    static let firmware = "/usr/share/seabios/bios-256k.bin"

    static func domain(
        os: String = "<type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type><kernel>/img/vmlinuz</kernel>",
        devices: String = "",
        extra: String = ""
    ) -> [UInt8] {
        Array(
            """
            <domain type='qemu' id='1'>
              <name>office-1</name>
              <metadata><ukey:entity xmlns:ukey="https://ukey.dev/libvirt/1">office</ukey:entity></metadata>
              <memory unit='KiB'>786432</memory>
              <os>\(os)</os>
              <devices>
                <emulator>/usr/bin/qemu-system-x86_64</emulator>
                <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/office.qcow2'/><target dev='vda' bus='virtio'/></disk>
                \(devices)
              </devices>\(extra)
            </domain>
            """.utf8
        )
    }

    static func refused(_ bytes: [UInt8], naming: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) { try DomainXML(parsing: bytes, defaultFirmware: firmware) } throws: {
            error in
            if !"\(error)".contains(naming) {
                Issue.record("refused, but without naming '\(naming)': \(error)", sourceLocation: sourceLocation)
            }
            return true
        }
    }

    @Test(
        "each element of the review that made QEMU read an unmeasured file is refused, naming it",
        arguments: [
            DomainCase(
                domain(
                    extra:
                        "<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:arg value='-kernel'/><qemu:arg value='/evil'/></qemu:commandline>"
                ),
                "qemu:commandline"
            ),
            DomainCase(
                domain(
                    extra:
                        "<qemu:override xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:device alias='net0'><qemu:frontend><qemu:property name='romfile' type='string' value='/evil'/></qemu:frontend></qemu:device></qemu:override>"
                ),
                "qemu:override"
            ),
            DomainCase(
                domain(devices: "<interface type='user'><rom file='/evil.rom'/><model type='virtio'/></interface>"),
                "rom file"
            ),
            DomainCase(
                domain(os: "<type arch='x86_64' machine='q35'>hvm</type>").replacing(
                    Array("<os>".utf8),
                    with: Array("<os firmware='efi'>".utf8)
                ),
                "firmware"
            ),
            DomainCase(
                domain(
                    os:
                        "<type arch='x86_64' machine='q35'>hvm</type><firmware><feature enabled='yes' name='secure-boot'/></firmware>"
                ),
                "firmware"
            ),
            DomainCase(
                domain(
                    devices:
                        "<disk type='dir' device='disk'><source dir='/etc'/><target dev='vdb' bus='virtio'/></disk>"
                ),
                "type 'dir'"
            ),
            DomainCase(
                domain(devices: "<filesystem type='mount'><source dir='/home'/><target dir='home'/></filesystem>"),
                "filesystem"
            ),
            DomainCase(
                domain(
                    devices:
                        "<disk type='nvme' device='disk'><source type='pci' managed='yes' namespace='1'><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source><target dev='vdb'/></disk>"
                ),
                "type 'nvme'"
            ),
            DomainCase(
                domain(
                    devices:
                        "<disk type='vhostuser' device='disk'><source type='unix' path='/tmp/vhost.sock'/><target dev='vdb'/></disk>"
                ),
                "type 'vhostuser'"
            ),
            DomainCase(
                domain(
                    devices:
                        "<disk type='volume' device='disk'><source pool='default' volume='x.qcow2'/><target dev='vdb'/></disk>"
                ),
                "type 'volume'"
            ),
            DomainCase(
                domain(
                    devices:
                        "<disk type='file' device='disk'><driver name='qemu' type='vmdk'/><source file='/img/x.vmdk'/><target dev='vdb'/></disk>"
                ),
                "vmdk"
            ),
            DomainCase(
                domain(extra: "<sysinfo type='fwcfg'><entry name='opt/com.example/x' file='/etc/shadow'/></sysinfo>"),
                "fwcfg"
            ),
            DomainCase(
                domain(devices: "<interface type='ethernet'><script path='/tmp/evil.sh'/></interface>"),
                "script"
            ),
            DomainCase(domain(devices: "<smartcard mode='host'/>"), "smartcard"),
            DomainCase(domain(devices: "<shmem name='shm'/>"), "shmem"),
            DomainCase(
                domain(
                    devices:
                        "<memory model='nvdimm'><source><path>/tmp/nvdimm</path></source><target><size unit='KiB'>524288</size></target></memory>"
                ),
                "nvdimm"
            ),
            DomainCase(domain(devices: "<video><driver name='vhostuser'/><model type='virtio'/></video>"), "vhostuser"),
            DomainCase(domain(devices: "<serial type='pipe'><source path='/tmp/in'/></serial>"), "pipe"),
            DomainCase(domain(devices: "<serial type='dev'><source path='/dev/ttyS0'/></serial>"), "dev"),
            DomainCase(
                domain(devices: "<rng model='virtio'><backend model='random'>/etc/shadow</backend></rng>"),
                "/etc/shadow"
            ),
            DomainCase(
                domain(
                    devices:
                        "<interface type='vhostuser'><source type='unix' path='/tmp/v.sock' mode='client'/></interface>"
                ),
                "vhostuser"
            ),
            DomainCase(
                domain(
                    devices:
                        "<disk type='file' device='disk'><source file='/img/x.qcow2'><slices><slice type='storage' offset='0' size='1'/></slices></source><target dev='vdb'/></disk>"
                ),
                "slices"
            ),
            DomainCase(
                domain(
                    devices:
                        "<disk type='file' device='disk'><source file='/img/x.qcow2'/><mirror type='file' file='/tmp/copy'/><target dev='vdb'/></disk>"
                ),
                "mirror"
            ),
            DomainCase(
                domain(
                    devices:
                        "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' function='0'/></source><rom file='/evil.rom'/></hostdev>"
                ),
                "rom file"
            ),
            DomainCase(domain(os: "<type arch='x86_64' machine='pc'>hvm</type><init>/sbin/init</init>"), "init"),
            DomainCase(
                domain().replacing(Array("/usr/bin/qemu-system-x86_64".utf8), with: Array("/tmp/evil-qemu".utf8)),
                "emulator"
            ),
            DomainCase(domain(devices: "<unknownthing file='/etc/shadow'/>"), "unknownthing"),
            DomainCase(domain(devices: "<graphics type='vnc'><audio path='/x'/></graphics>"), "audio"),
            DomainCase(domain(extra: "<foo:bar xmlns:foo='urn:x'/>"), "namespace"),
            DomainCase(domain(os: "<type arch='x86_64' machine='microvm'>hvm</type>"), "microvm"),
        ]
    )
    func refusals(_ refused: DomainCase) {
        Self.refused(refused.xml, naming: refused.naming)
    }

    /// A domain and what its refusal must name; shown in the report by that name.
    struct DomainCase: CustomTestStringConvertible, Sendable {
        let xml: [UInt8]
        let naming: String
        init(_ xml: [UInt8], _ naming: String) {
            self.xml = xml
            self.naming = naming
        }
        var testDescription: String { "refused naming '\(naming)'" }
    }

    @Test(
        "what QEMU loads besides the disks is measured: SeaBIOS when there is no <loader>, <dtb>, <acpi><table>, the NVRAM varstore and its template"
    )
    func measuredBesidesDisks() throws {
        let plain = try DomainXML(parsing: Self.domain(), defaultFirmware: Self.firmware)
        #expect(plain.loader == Self.firmware)
        // No <os> at all (the fuzzer's finding: the firmware went unmeasured): SeaBIOS still is.
        #expect(
            try DomainXML(parsing: Array("<domain><name>x</name></domain>".utf8), defaultFirmware: Self.firmware).loader
                == Self.firmware
        )
        let full = try DomainXML(
            parsing: Self.domain(
                os: """
                    <type arch='x86_64' machine='q35'>hvm</type><loader readonly='yes' type='pflash'>/fw/OVMF_CODE.fd</loader>\
                    <nvram template='/fw/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/office_VARS.fd</nvram><dtb>/fw/board.dtb</dtb>\
                    <acpi><table type='slic'>/fw/slic.bin</table></acpi>
                    """
            ),
            defaultFirmware: Self.firmware
        )
        let mapping = try DomainMapping(full) {
            (path: String, _: String?) throws(HypervisorError) -> [BackingChain.Layer] in
            [BackingChain.Layer(path: path, format: "qcow2")]
        }
        #expect(
            mapping.steps.map { "\($0.component)=\($0.source)" } == [
                "loader=file(\"/fw/OVMF_CODE.fd\")", "nvram-template=file(\"/fw/OVMF_VARS.fd\")",
                "nvram=file(\"/var/lib/libvirt/qemu/nvram/office_VARS.fd\")",
                "dtb=file(\"/fw/board.dtb\")", "acpi-table-1=file(\"/fw/slic.bin\")",
                "disk-vda=file(\"/img/office.qcow2\")",
            ]
        )
        // Outputs, sockets and device nodes of the kinds named load nothing: let through.
        let outputs = try DomainXML(
            parsing: Self.domain(
                devices: """
                    <serial type='file'><source path='/var/log/office.log'/><target port='0'/></serial>
                    <channel type='unix'><source mode='bind' path='/run/ukey/guard/office.sock'/><target type='virtio' name='io.ukey.guard.0'/></channel>
                    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
                    <graphics type='vnc' socket='/run/vnc.sock'/>
                    """
            ),
            defaultFirmware: Self.firmware
        )
        #expect(outputs.sockets.map(\.path).contains("/run/ukey/guard/office.sock"))
    }

    @Test(
        "a <backingStore> must be the images' own chain, layer by layer; one that differs, that ends it early, or that goes on past it is refused"
    )
    func backingStoreAgrees() throws {
        let chain: DomainMapping.Chain = { path, _ in
            [
                BackingChain.Layer(path: path, format: "qcow2"),
                BackingChain.Layer(path: "/img/base.qcow2", format: "qcow2"),
            ]
        }
        func disk(_ store: String) throws(HypervisorError) -> DomainMapping {
            let xml = Self.domain().replacing(
                Array("<target dev='vda' bus='virtio'/></disk>".utf8),
                with: Array("<target dev='vda' bus='virtio'/>\(store)</disk>".utf8)
            )
            return try DomainMapping(DomainXML(parsing: xml, defaultFirmware: Self.firmware), chain: chain)
        }
        let agreeing =
            "<backingStore type='file'><format type='qcow2'/><source file='/img/base.qcow2'/><backingStore/></backingStore>"
        #expect(try disk(agreeing).steps.first?.component == "image")
        #expect(try disk("").steps.first?.source == .file("/img/base.qcow2"), "no <backingStore>: the headers' chain")
        #expect {
            try disk(
                "<backingStore type='file'><format type='qcow2'/><source file='/img/other.qcow2'/><backingStore/></backingStore>"
            )
        } throws: {
            "\($0)".contains("/img/other.qcow2") && "\($0)".contains("/img/base.qcow2")
        }
        #expect { try disk("<backingStore/>") } throws: { "\($0)".contains("ends the chain") }
        #expect {
            try disk(
                "<backingStore type='file'><format type='raw'/><source file='/img/base.qcow2'/><backingStore/></backingStore>"
            )
        } throws: { "\($0)".contains("raw") }
        #expect {
            try disk(
                agreeing.replacingOccurrences(
                    of: "<backingStore/>",
                    with: "<backingStore type='file'><format type='raw'/><source file='/img/more.raw'/></backingStore>"
                )
            )
        } throws: {
            "\($0)".contains("end before it")
        }
    }

    @Test("a socket in ukey's guard directory is this VM's own or the start is refused, whatever the channel is called")
    func guardDirectory() throws {
        func mapping(_ channel: String) throws(HypervisorError) -> DomainMapping {
            try DomainMapping(
                DomainXML(parsing: Self.domain(devices: channel), defaultFirmware: Self.firmware),
                guardDirectory: "/run/ukey/guard"
            ) { _, _ in [] }
        }
        #expect(throws: Never.self) {
            try mapping(
                "<channel type='unix'><source mode='bind' path='/run/ukey/guard/office.sock'/><target type='virtio' name='io.ukey.guard.0'/></channel>"
            )
        }
        #expect(throws: Never.self) {
            try mapping(
                "<channel type='unix'><source mode='bind' path='/run/agent.sock'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
            )
        }
        for stolen in [
            "<channel type='unix'><source mode='bind' path='/run/ukey/guard/finance.sock'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>",
            "<serial type='unix'><source mode='bind' path='/run/ukey/guard/finance.sock'/></serial>",
            "<channel type='unix'><source mode='connect' path='/run/ukey/guard/../guard/finance.sock'/><target type='virtio' name='x'/></channel>",
        ] {
            #expect { try mapping(stolen) } throws: { "\($0)".contains("guard directory") }
        }
    }
}
