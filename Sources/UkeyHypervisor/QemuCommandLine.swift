/// What a qemu command line loads, for `ukey-qemu`: the same guest description the libvirt hook
/// reads from a domain's XML, so both gates ask ukeyd the same questions (`DomainMapping`).
///
/// Understood: `-name` (the entity, or `guest=NAME`), `-kernel`, `-initrd`, `-append`, `-bios`,
/// `-pflash`, `-drive file=` (with QEMU's `,,` escape), `-blockdev filename=` (key=value or JSON),
/// `-hda`..`-hdd`, `-cdrom`. Disks are named as the guest sees them (`-drive if=virtio`: vda,
/// vdb...; IDE: hda...; SCSI: sda...), so a domain and its qemu command line map alike. Options that would load a file ukey does not measure (`-fw_cfg`,
/// `-option-rom`, `-readconfig`, `-loadvm`, `-incoming`, a `-device` with `file=` or `romfile=`)
/// are refused: the gate must account for everything QEMU reads, or refuse.
public enum QemuCommandLine {
    static let refused: Set<String> = ["-fw_cfg", "-option-rom", "-readconfig", "-loadvm", "-incoming", "-fda", "-fdb", "-mtdblock", "-sd", "-initrd-append"]

    public static func guest(_ arguments: [String], entity: String?, session: String?) throws(HypervisorError) -> DomainXML {
        var name: String?
        var kernel: String?, initrd: String?, cmdline: String?, loader: String?
        var disks: [DomainXML.Disk] = []
        var counts: [String: Int] = [:]
        var index = 0
        func value(_ option: String) throws(HypervisorError) -> String {
            index += 1
            guard index < arguments.count else { throw HypervisorError("\(option) needs a value") }
            return arguments[index]
        }
        // Named as the guest sees them: virtio vda, vdb...; IDE hda...; SCSI sda...; flash pflash0...
        func disk(_ path: String, interface: String) {
            let prefix = ["virtio": "vd", "scsi": "sd", "ide": "hd", "pflash": "pflash", "blockdev": "blockdev"][interface] ?? interface
            let n = counts[prefix, default: 0]
            counts[prefix] = n + 1
            let target = prefix == "pflash" || prefix == "blockdev" ? "\(prefix)\(n)" : prefix + String(UnicodeScalar(UInt8(97 + min(n, 25))))
            disks.append(DomainXML.Disk(source: path, target: target))
        }
        while index < arguments.count {
            let argument = arguments[index]
            // qemu takes both -opt and --opt.
            let option = argument.hasPrefix("--") ? String(argument.dropFirst()) : argument
            switch option {
            case "-name":
                let text = try value(option)
                name = Self.options(text).first { $0.key == "guest" }?.value ?? Self.options(text).first?.key
            case "-kernel": kernel = try value(option)
            case "-initrd": initrd = try value(option)
            case "-append": cmdline = try value(option)
            case "-bios": loader = try value(option)
            case "-pflash": disk(try value(option), interface: "pflash")
            case "-hda", "-hdb", "-hdc", "-hdd", "-cdrom": disk(try value(option), interface: "ide")
            case "-drive":
                let fields = Self.options(try value(option))
                if let file = fields.first(where: { $0.key == "file" })?.value {
                    disk(file, interface: (fields.first { $0.key == "if" }?.value ?? nil) ?? "ide")
                }
            case "-blockdev":
                let text = try value(option)
                if let file = Self.blockdevFilename(text) { disk(file, interface: "blockdev") }
            case "-device":
                let fields = Self.options(try value(option))
                if let key = fields.first(where: { ["file", "romfile"].contains($0.key) })?.key {
                    throw HypervisorError("-device with \(key)= loads a file ukey does not measure; refused")
                }
            default:
                if refused.contains(option) { throw HypervisorError("\(option) loads what ukey does not measure; refused") }
            }
            index += 1
        }
        let guestName = entity ?? name
        guard let guestName else { throw HypervisorError("the guest needs a name: -name NAME, or UKEY_ENTITY") }
        return DomainXML(name: guestName, entity: entity, session: session, kernel: kernel, initrd: initrd, cmdline: cmdline, loader: loader, disks: disks)
    }

    /// QEMU's `key=value,key=value` (a bare first item is a key without value; `,,` is a comma).
    static func options(_ text: String) -> [(key: String, value: String?)] {
        var items: [String] = []
        var current = ""
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            if character == "," {
                if characters.first == "," {
                    current.append(",")
                    characters = characters.dropFirst()
                } else {
                    items.append(current)
                    current = ""
                }
            } else {
                current.append(character)
            }
        }
        items.append(current)
        return items.map { item in
            guard let equals = item.firstIndex(of: "=") else { return (item, nil) }
            return (String(item[..<equals]), String(item[item.index(after: equals)...]))
        }
    }

    /// `filename` of a `-blockdev`, in its key=value or its JSON form.
    static func blockdevFilename(_ text: String) -> String? {
        if text.hasPrefix("{") {
            // {"driver":"file","filename":"/path",...}: the one string field ukey needs.
            guard let range = text.range(of: "\"filename\"") else { return nil }
            let rest = text[range.upperBound...].drop { $0 == " " || $0 == ":" }
            guard rest.first == "\"" else { return nil }
            return String(rest.dropFirst().prefix { $0 != "\"" })
        }
        return options(text).first { $0.key == "filename" }?.value ?? nil
    }
}
