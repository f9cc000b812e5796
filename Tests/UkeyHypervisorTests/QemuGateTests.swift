import Foundation
import Testing
import UkeyHypervisor
import UkeyTesting

/// ukey-qemu reads a command line as QEMU 7.2 does and lets through only what it measures or
/// knows to load nothing. Each case here is one a review ran past the old reader, QEMU then
/// opening an unmeasured file; each must now be measured (so ukeyd judges it) or refused, naming
/// the option.
@Suite("ukey-qemu: a command line read as QEMU 7.2 reads it, default-deny")
struct QemuGateTests {
    static func guest(_ arguments: [String]) throws(HypervisorError) -> DomainXML {
        try QemuCommandLine.guest(
            ["-name", "vm"] + arguments,
            entity: nil,
            session: nil,
            defaultFirmware: "/usr/share/seabios/bios-256k.bin"
        )
    }

    static func refused(_ arguments: [String], naming: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) { try guest(arguments) } throws: { error in
            let text = "\(error)"
            let named = text.contains(naming)
            if !named {
                Issue.record("refused, but without naming '\(naming)': \(text)", sourceLocation: sourceLocation)
            }
            return true
        }
    }

    @Test(
        "an option's argument is the next word, whatever it looks like: -D -name -kernel /evil measures /evil as the kernel"
    )
    func argumentsTakenAsQemuTakesThem() throws {
        let guest = try Self.guest(["-D", "-name", "-kernel", "/evil/vmlinuz"])
        #expect(guest.kernel == "/evil/vmlinuz")
        #expect(guest.name == "vm")
        // A word that is no option is an image QEMU opens with a guessed format; an unknown option is QEMU's error.
        Self.refused(["/images/disk.img"], naming: "/images/disk.img")
        Self.refused(["-machine=pc"], naming: "-machine=pc")
        Self.refused(["-nosuchoption"], naming: "-nosuchoption")
        Self.refused(["-kernel"], naming: "-kernel")
    }

    @Test(
        "the attacks of the review, each refused naming what it uses",
        arguments: [
            (["-machine", "pc,kernel=/evil"], "kernel="),
            (["-machine", "initrd=/evil"], "initrd="),
            (["-machine", "dtb=/evil"], "dtb="),
            (["-machine", "firmware=/evil"], "firmware="),
            (["-M", "q35,kernel=/evil"], "kernel="),
            (["-drive", "file=/good.qcow2,format=qcow2,file=/evil.qcow2"], "'file' is given twice"),
            (["-drive", "file=/good.img,format=raw", "-set", "drive.d0.file=/evil"], "-set"),
            (["-device", #"{"driver":"loader","file":"/evil.bin"}"#], "loader"),
            (["-drive", "driver=raw,file.filename=/evil"], "driver="),
            (["-drive", "file=/good.qcow2,format=qcow2,file.filename=/evil"], "file.filename"),
            (["-drive", "file=/good.qcow2,format=qcow2,backing.file.filename=/evil"], "backing.file.filename"),
            (["-object", "memory-backend-file,id=m,size=1G,mem-path=/evil"], "memory-backend-file"),
            (["-object", #"{"qom-type":"memory-backend-ram","id":"m","size":1024,"mem-path":"/evil"}"#], "mem-path"),
            (["-global", "virtio-net-pci.romfile=/evil.rom"], "-global"),
            (["-acpitable", "file=/evil.aml"], "-acpitable"),
            (["-smbios", "file=/evil.bin"], "file="),
            (["-L", "/evil"], "-L"),
            (["-device", "virtio-net-pci,romfile=/evil.rom"], "romfile"),
            (["-device", "foo,,id=r0"], "foo,id=r0"),
            (["-device", #"{"driver":"virtio-net-pci","rom\u0066ile":"/evil.rom"}"#], "romfile"),
            (["-readconfig", "/evil.cfg"], "-readconfig"),
            (["-fw_cfg", "name=opt/x,file=/etc/shadow"], "-fw_cfg"),
            (["-option-rom", "/evil.rom"], "-option-rom"),
            (["-hda", "/disk.img"], "-hda"),
            (["-pflash", "/vars.fd"], "-pflash"),
            (["-drive", "file=/disk.img"], "format="),
            (["-drive", "file=/disk.img,format=vmdk"], "vmdk"),
            (["-drive", #"file=json:{"driver":"file",,"filename":"/evil"},format=raw"#], "json:"),
            (["-drive", "file=nbd:localhost:10809,format=raw"], "protocol"),
            (["-drive", "file=fat:rw:/etc,format=raw"], "protocol"),
            (["-drive", "file=disk.img,format=raw"], "absolute"),
            (["-kernel", "vmlinuz"], "absolute"),
            (["-blockdev", "driver=qcow2,node-name=n,file=f,data-file=d"], "data-file"),
            (
                ["-blockdev", #"{"driver":"qcow2","node-name":"n","file":{"driver":"file","filename":"/evil"}}"#],
                "nested"
            ),
            (["-blockdev", "driver=qcow2,node-name=n,file=f,backing=b"], "backing="),
            (["-blockdev", "driver=vvfat,node-name=n,dir=/etc"], "vvfat"),
            (["-netdev", "tap,id=n"], "script=no"),
            (["-netdev", "user,id=n,smb=/home"], "smb"),
            (["-netdev", "user,id=n,guestfwd=tcp:10.0.2.1:80-cmd:sh"], "guestfwd"),
            (["-netdev", "bridge,id=n"], "bridge"),
            (["-chardev", "pipe,id=c,path=/tmp/p"], "pipe"),
            (["-serial", "pipe:/tmp/p"], "pipe:"),
            (["-serial", "/dev/ttyS0"], "/dev/ttyS0"),
            (["-object", "rng-random,id=r,filename=/etc/shadow"], "/etc/shadow"),
            (["-object", "secret,id=s,file=/etc/shadow"], "file="),
            (["-object", "tls-creds-x509,id=t,dir=/etc/pki"], "tls-creds-x509"),
            (["-tpmdev", "passthrough,id=t,path=/etc/shadow"], "/etc/shadow"),
            (["-boot", "order=c,splash=/evil.bmp"], "splash="),
            (["-incoming", "exec:sh"], "-incoming"),
            (["-loadvm", "snap"], "-loadvm"),
            (["-plugin", "/evil.so"], "-plugin"),
            (["-gdb", "tcp::1234"], "-gdb"),
            (["-s"], "-s"),
            (["-k", "/evil"], "-k"),
            (["-initrd", "/a,/b"], "multiboot"),
            (["-machine", "microvm"], "microvm"),
            (["-spice", "port=5900"], "-spice"),
            (["-virtfs", "local,path=/,mount_tag=r,security_model=none"], "-virtfs"),
            (["-mem-path", "/dev/hugepages"], "-mem-path"),
        ] as [([String], String)]
    )
    func attacks(arguments: [String], naming: String) {
        Self.refused(arguments, naming: naming)
    }

    @Test(
        "what is measured is read as QEMU reads it: an escaped JSON key is the key, a -dtb and the default firmware are measured, a doubled comma is a comma"
    )
    func measuredAsQemuReads() throws {
        let escaped = try Self.guest([
            "-blockdev", #"{"driver":"file","file\u006eame":"/images/evil.raw","node-name":"d"}"#,
        ])
        #expect(
            escaped.disks.map(\.source) == ["/images/evil.raw"],
            "QEMU reads \"file\\u006eame\" as filename: ukey measures it"
        )
        let single = try Self.guest(["-blockdev", #"{'driver':'file','filename':'/images/q.raw','node-name':'q'}"#])
        #expect(single.disks.map(\.source) == ["/images/q.raw"], "single quotes are QEMU JSON too")
        let dtb = try Self.guest(["-dtb", "/boot/board.dtb"])
        #expect(dtb.dtb == "/boot/board.dtb")
        let mapping = try DomainMapping(dtb) {
            (path: String, _: String?) throws(HypervisorError) -> [BackingChain.Layer] in []
        }
        #expect(mapping.steps.map(\.component) == ["loader", "dtb"])
        #expect(
            mapping.steps[0].source == .file("/usr/share/seabios/bios-256k.bin"),
            "no -bios: QEMU's SeaBIOS is the loader"
        )
        let comma = try Self.guest(["-drive", "file=/img/a,,b.qcow2,format=qcow2,if=virtio"])
        #expect(comma.disks.first?.source == "/img/a,b.qcow2")
        #expect(try Self.guest(["-bios", "/fw/OVMF.fd"]).loader == "/fw/OVMF.fd")
        // What loads nothing passes as it is.
        let plain = try Self.guest([
            "-machine", "accel=tcg", "-m", "768", "-smp", "2", "-display", "none", "-no-reboot", "-nographic",
            "-serial", "file:/tmp/console.log",
            "-device", "virtio-net-pci,netdev=n0,romfile=", "-netdev",
            "user,id=n0,hostfwd=tcp::2222-:22,hostfwd=tcp::8080-:80",
            "-chardev", "socket,id=g,path=/run/ukey/guard/vm.sock,server=on,wait=off", "-device", "virtio-serial-pci",
            "-device", "virtserialport,chardev=g,name=io.ukey.guard.0",
            "-object", "rng-random,id=r,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=r",
        ])
        #expect(plain.disks.isEmpty && plain.kernel == nil)
    }

    @Test(
        "QemuOpts and keyval as QEMU reads them: implied keys, flags, ',,', last-wins keys refused, dotted keys kept whole"
    )
    func grammars() throws {
        let device = try QemuOpts(
            parsing: "virtio-net-pci,netdev=n,,x,nomux,romfile=",
            option: "-device",
            implied: "driver",
            grammar: .qemuOpts
        )
        #expect(device.items.map(\.key) == ["driver", "netdev", "mux", "romfile"])
        #expect(device["netdev"] == "n,x" && device["mux"] == "off" && device["romfile"] == "")
        let implied = try QemuOpts(parsing: "a,,b=c", option: "-device", implied: "driver", grammar: .qemuOpts)
        #expect(implied["driver"] == "a,b=c", "the implied value of QemuOpts unescapes ',,' and may hold '='")
        let keyval = try QemuOpts(
            parsing: "q35,accel=tcg,kernel-irqchip=split",
            option: "-machine",
            implied: "type",
            grammar: .keyval
        )
        #expect(keyval["type"] == "q35" && keyval["accel"] == "tcg")
        #expect(throws: HypervisorError.self) {
            try QemuOpts(parsing: "pc,usb", option: "-machine", implied: "type", grammar: .keyval)
        }
        #expect(throws: HypervisorError.self) {
            try QemuOpts(parsing: "a=1,a=2", option: "-x", implied: nil, grammar: .qemuOpts)
        }
        #expect(
            try QemuOpts(
                parsing: "user,hostfwd=a,hostfwd=b",
                option: "-netdev",
                implied: "type",
                grammar: .qemuOpts,
                repeatable: ["hostfwd"]
            ).items.count == 3
        )
        #expect(
            try QemuOpts(parsing: "file.filename=/x", option: "-drive", implied: nil, grammar: .qemuOpts)[
                "file.filename"
            ] == "/x"
        )
    }

    @Test(
        "QEMU's JSON: single quotes, escapes in keys, \\u0000, duplicate keys and trailing commas refused; random corruption never crashes"
    )
    func json() throws {
        #expect(
            try QemuJSON(parsing: #"{'a':"b\u0041",'c':[1,-2.5e3,true,null]}"#)
                == .object([
                    ("a", .string("bA")), ("c", .array([.number("1"), .number("-2.5e3"), .bool(true), .null])),
                ])
        )
        #expect(try QemuJSON(parsing: #"{"\ud83d\ude00":1}"#)["😀"] == .number("1"))
        for bad in [
            #"{"a":1,"a":2}"#, #"{"a":1,}"#, #"{"a":01}"#, #"{"a":truex}"#, #"{"a":"\q"}"#, #"{"a":1} x"#,
            "{\"a\":\"\u{1}\"}", #"{"a":"\ud800"}"#,
        ] {
            #expect(throws: HypervisorError.self, "\(bad)") { try QemuJSON(parsing: bad) }
        }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect { try QemuJSON(parsing: deep) } throws: { "\($0)".contains("deeper") }
        var generator = SeededRandom.forTest()
        let base = Array(
            #"{"driver":"file","filename":"/x\u0041.img",'node-name':'n','read-only':true,"n":[1,2.5]}"#.utf8
        )
        var parsed = 0
        for _ in 0..<5_000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            let text = String(decoding: bytes, as: UTF8.self)
            if (try? QemuJSON(parsing: text)) != nil { parsed += 1 }
            _ = try? QemuOpts(parsing: text, option: "-x", implied: "driver", grammar: .qemuOpts)
            _ = try? QemuOpts(parsing: text, option: "-x", implied: "driver", grammar: .keyval)
            _ = try? QemuCommandLine.guest(
                ["-name", "v", "-blockdev", text],
                entity: nil,
                session: nil,
                defaultFirmware: "/fw"
            )
        }
        #expect(parsed > 0, "\(generator)")
    }
}
