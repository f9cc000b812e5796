import Foundation
import Testing
import UkeyTesting
import UkeyHypervisor

/// A libvirt domain, as the hook reads it, mapped to the questions it asks ukeyd.
@Suite("libvirt domain XML and its mapping to entities and components")
struct DomainMappingTests {
    static let xml = """
        <domain type='kvm'>
          <name>office-1</name>
          <metadata>
            <ukey:entity xmlns:ukey="https://ukey.dev/libvirt/1" session="s-123">office</ukey:entity>
          </metadata>
          <os>
            <type arch='x86_64' machine='pc'>hvm</type>
            <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
            <nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/office_VARS.fd</nvram>
            <kernel>/var/lib/ukey/guest/vmlinuz</kernel>
            <initrd>/var/lib/ukey/guest/initrd.img</initrd>
            <cmdline>console=ttyS0 quiet</cmdline>
          </os>
          <devices>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/>
              <source file='/var/lib/libvirt/images/office.qcow2'/>
              <target dev='vda' bus='virtio'/>
            </disk>
            <disk type='file' device='cdrom'>
              <target dev='sda' bus='sata'/>
            </disk>
          </devices>
        </domain>
        """

    @Test("every field the hook needs is read, and ukey's metadata by its namespace")
    func parses() throws {
        let domain = try DomainXML(parsing: Array(Self.xml.utf8))
        #expect(domain.name == "office-1" && domain.entity == "office" && domain.session == "s-123")
        #expect(domain.kernel == "/var/lib/ukey/guest/vmlinuz" && domain.initrd == "/var/lib/ukey/guest/initrd.img")
        #expect(domain.cmdline == "console=ttyS0 quiet")
        #expect(
            domain.loader == "/usr/share/OVMF/OVMF_CODE.fd" && domain.nvramTemplate == "/usr/share/OVMF/OVMF_VARS.fd"
        )
        #expect(
            domain.disks.count == 2 && domain.disks[0].source == "/var/lib/libvirt/images/office.qcow2"
                && domain.disks[0].target == "vda"
        )
        // Another namespace's <entity> is not ukey's.
        let foreign = Self.xml.replacingOccurrences(of: "https://ukey.dev/libvirt/1", with: "https://example.invalid/1")
        #expect(try DomainXML(parsing: Array(foreign.utf8)).entity == nil)
        #expect(try DomainXML(parsing: Array(foreign.utf8)).session == nil)
    }

    @Test(
        "a guard channel bound at the VM's own socket name is read and allowed; one at another VM's name, or with no path, refuses the start; other channels are not guard channels"
    )
    func guardChannels() throws {
        func domain(_ channels: String) -> [UInt8] {
            Array(Self.xml.replacingOccurrences(of: "</devices>", with: channels + "</devices>").utf8)
        }
        func channel(_ path: String?, name: String = "io.ukey.guard.0", type: String = "virtio") -> String {
            "<channel type='unix'>" + (path.map { "<source mode='bind' path='\($0)'/>" } ?? "")
                + "<target type='\(type)' name='\(name)'/></channel>"
        }
        let own = try DomainXML(
            parsing: domain(
                channel("/run/ukey/guard/office.sock") + channel("/run/agent.sock", name: "org.qemu.guest_agent.0")
            )
        )
        #expect(own.guardChannels == ["/run/ukey/guard/office.sock"])
        #expect(throws: Never.self) { try DomainMapping(own, chain: { _, _ in [] }) }
        for bad in [channel("/run/ukey/guard/dev.sock"), channel("/run/ukey/guard/xoffice.sock"), channel(nil)] {
            #expect { try DomainMapping(try DomainXML(parsing: domain(bad)), chain: { _, _ in [] }) } throws: { error in
                "\(error)".contains("which is not this VM's")
            }
        }
        // A guest-agent channel, or a non-virtio target of that name, is not a guard channel.
        #expect(
            try DomainXML(parsing: domain(channel("/run/ukey/guard/dev.sock", type: "guestfwd"))).guardChannels.isEmpty
        )
    }

    @Test(
        "bases first, deepest first, each its own entity; then the VM's loader, firmware, kernel, initrd, cmdline and disks"
    )
    func mapsInChainOrder() throws {
        let domain = try DomainXML(parsing: Array(Self.xml.utf8))
        let chains = [
            "/var/lib/libvirt/images/office.qcow2": [
                "/var/lib/libvirt/images/office.qcow2", "/var/lib/libvirt/images/office-layer.qcow2",
                "/var/lib/libvirt/images/debian-base.qcow2",
            ]
        ]
        let mapping = try DomainMapping(domain) {
            (path: String, _: String?) throws(HypervisorError) -> [BackingChain.Layer] in
            (chains[path] ?? [path]).map { BackingChain.Layer(path: $0, format: "qcow2") }
        }
        #expect(mapping.vm == "office" && mapping.session == "s-123")
        let steps = mapping.steps.map { "\($0.entity)/\($0.component)" }
        #expect(
            steps == [
                "debian-base/image", "office-layer/image",
                "office/loader", "office/nvram-template", "office/nvram", "office/kernel", "office/initrd",
                "office/cmdline", "office/disk-vda",
            ]
        )
        #expect(mapping.steps[1].imageParent == "debian-base" && mapping.steps[0].imageParent == nil)
        #expect(mapping.steps[7].source == .text("console=ttyS0 quiet"))
    }

    @Test(
        "malformed XML, a DOCTYPE, an oversized document, no name, an unmeasurable disk and a bad entity name are refused with a reason"
    )
    func refusals() throws {
        let cases: [(String, String)] = [
            ("<domain><name>x</name>", "malformed"),
            ("<!DOCTYPE d [<!ENTITY e 'x'>]><domain><name>&e;</name></domain>", "DOCTYPE"),
            ("<domain><os/></domain>", "no <name>"),
            ("<network><name>x</name></network>", "not a libvirt <domain>"),
            ("", "empty"),
        ]
        for (text, reason) in cases {
            #expect { try DomainXML(parsing: Array(text.utf8)) } throws: { "\($0)".contains(reason) }
        }
        let big =
            "<domain><name>x</name><description>" + String(repeating: "a", count: DomainXML.maxBytes)
            + "</description></domain>"
        #expect { try DomainXML(parsing: Array(big.utf8)) } throws: { "\($0)".contains("at most") }
        #expect {
            try DomainXML(
                parsing: Array(
                    "<domain><name>x</name><devices><disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vda'/></disk></devices></domain>"
                        .utf8
                )
            )
        } throws: { "\($0)".contains("type 'network'") }
        let badName = try DomainXML(parsing: Array("<domain><name>a b/c</name></domain>".utf8))
        #expect { try DomainMapping(badName) } throws: { "\($0)".contains("cannot be a policy entity name") }
        // Random corruption never crashes the reader; what it takes is read the same each time
        // and maps or is refused with a HypervisorError, never another failure.
        var generator = SeededRandom.forTest()
        let base = Array(Self.xml.utf8)
        var read = 0
        for _ in 0..<2_000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            do {
                let domain = try DomainXML(parsing: bytes)
                read += 1
                #expect(try DomainXML(parsing: bytes) == domain, "\(generator)")
                do { _ = try DomainMapping(domain) } catch { #expect(!error.description.isEmpty, "\(generator)") }
            } catch {
                #expect(!error.description.isEmpty, "\(generator)")
            }
        }
        #expect(read > 0, "\(generator)")
    }
}

@Suite("qemu command lines: what ukey-qemu measures")
struct QemuCommandLineTests {
    @Test("kernel, initrd, append, bios, drives (escaped commas), blockdev: the same steps a domain gives")
    func parses() throws {
        let guest = try QemuCommandLine.guest(
            [
                "-machine", "accel=tcg", "-name", "guest=office,debug-threads=on", "-kernel", "/k", "-initrd", "/i",
                "-append", "console=ttyS0 quiet", "-bios", "/fw.bin",
                "-drive", "file=/img/a,,b.qcow2,format=qcow2,if=virtio", "-drive",
                "file=/img/c.qcow2,if=virtio,format=raw",
                "-blockdev", #"{"driver":"file","filename":"/img/d.raw","node-name":"d"}"#,
            ],
            entity: nil,
            session: "s1"
        )
        #expect(
            guest.name == "office" && guest.kernel == "/k" && guest.initrd == "/i"
                && guest.cmdline == "console=ttyS0 quiet" && guest.loader == "/fw.bin"
        )
        #expect(guest.disks.map(\.source) == ["/img/a,b.qcow2", "/img/c.qcow2", "/img/d.raw"])
        #expect(guest.disks.map(\.target) == ["vda", "vdb", "blockdev0"])
        let mapping = try DomainMapping(guest) {
            (path: String, _: String?) throws(HypervisorError) -> [BackingChain.Layer] in
            [BackingChain.Layer(path: path, format: "raw")]
        }
        #expect(
            mapping.steps.map(\.component) == [
                "loader", "kernel", "initrd", "cmdline", "disk-vda", "disk-vdb", "disk-blockdev0",
            ]
        )
        #expect(mapping.session == "s1")
    }

    @Test("options that load files ukey does not measure are refused, and a guest needs a name")
    func refusals() throws {
        for arguments in [
            ["-name", "x", "-fw_cfg", "name=opt/x,file=/etc/shadow"],
            ["-name", "x", "-device", "virtio-net,romfile=/x.rom"], ["-name", "x", "-readconfig", "/q.cfg"],
        ] {
            #expect(throws: HypervisorError.self) { try QemuCommandLine.guest(arguments, entity: nil, session: nil) }
        }
        #expect { try QemuCommandLine.guest(["-kernel", "/k"], entity: nil, session: nil) } throws: {
            "\($0)".contains("needs a name")
        }
        #expect { try QemuCommandLine.guest(["-name"], entity: nil, session: nil) } throws: {
            "\($0)".contains("needs a value")
        }
    }
}
