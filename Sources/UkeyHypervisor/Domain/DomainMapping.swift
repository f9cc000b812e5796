import Foundation

/// The one mapping from a libvirt domain to what ukeyd is asked, in order (the hook asks, and
/// `ukeyctl policy enroll-domain` writes the policy for it):
///
/// | what | entity | component |
/// | --- | --- | --- |
/// | each image a disk is layered on, deepest first | the image's file name without its extension (`debian-base.qcow2` -> `debian-base`), its parent the next image down (the deepest: the VM's parent in the policy) | `image` |
/// | `<loader>` (or QEMU's SeaBIOS when there is none) | the VM | `loader` |
/// | `<nvram>`'s template, the varstore itself | the VM | `nvram-template`, `nvram` |
/// | `<kernel>`, `<initrd>`, `<dtb>` | the VM | `kernel`, `initrd`, `dtb` |
/// | `<cmdline>` | the VM | `cmdline` (SHA-256 of its UTF-8 bytes, exactly as written) |
/// | `<acpi><table>`s, in order | the VM | `acpi-table-1`, `acpi-table-2`... |
/// | each disk's own image (the overlay, for a layered disk) | the VM | `disk-<target>` (`disk-vda`) |
///
/// A disk the guest can write (not `<readonly/>`, not `<shareable/>`) and the NVRAM varstore are
/// the VM's state: `writable`, sealed by ukeyd at every stop rather than fixed in the policy.
///
/// The VM is the `<ukey:entity>` metadata's name, else the domain's name. Parents are measured
/// before their children, as the chain rule asks. A disk's `<backingStore>`, which libvirt uses
/// instead of the images' headers, must name the same layers in the same formats, or the start
/// is refused; so must every socket the domain binds in ukey's guard directory be this VM's own.
public struct DomainMapping: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        case file(String)
        /// Text whose UTF-8 bytes are measured (the kernel command line).
        case text(String)
    }

    public struct Step: Sendable, Equatable {
        public var entity: String
        public var component: String
        public var source: Source
        /// For an image entity: the entity below it in its chain (nil for the deepest).
        public var imageParent: String?
        /// The guest writes it: the VM's own disk image (not `<readonly/>`, not `<shareable/>`)
        /// or its NVRAM varstore. Enrolled `writable: true`: ukeyd seals it at every stop.
        /// Backing layers never are.
        public var writable = false

        public init(
            entity: String,
            component: String,
            source: Source,
            imageParent: String? = nil,
            writable: Bool = false
        ) {
            self.entity = entity
            self.component = component
            self.source = source
            self.imageParent = imageParent
            self.writable = writable
        }
    }

    public var vm: String
    public var session: String?
    public var steps: [Step]
    /// The guest's TPM is the vTPM ukeyd runs for it (its socket is `<vtpm directory>/<vm>.sock`):
    /// the gate asks ukeyd to start it once every step is trusted.
    public var vtpm = false

    public typealias Chain = (_ path: String, _ format: String?) throws(HypervisorError) -> [BackingChain.Layer]

    /// Maps `domain`, reading each disk's backing chain with `chain` (the qcow2 headers).
    /// `guardDirectory`: where ukeyd serves guard channels (`<vm>.sock` each), when known.
    /// `vtpmDirectory`: where ukeyd runs its vTPMs (`<vm>.sock` each), when known; a guest TPM
    /// connected anywhere else is a swtpm ukeyd does not run, and refused.
    public init(
        _ domain: DomainXML,
        guardDirectory: String? = nil,
        vtpmDirectory: String? = nil,
        chain: Chain = BackingChain.layers
    ) throws(HypervisorError) {
        vm = domain.entity ?? domain.name
        guard Self.isEntityName(vm) else {
            throw HypervisorError("'\(vm)' cannot be a policy entity name (letters, digits, '-', '_', '.', at most 64)")
        }
        // ukeyd answers a guard channel for the VM its socket is named after: a domain whose
        // channel has another VM's name would get that VM's answers. Fail closed.
        for path in domain.guardChannels where !path.hasSuffix("/\(vm).sock") {
            throw HypervisorError(
                "its \(DomainXML.guardChannelName) channel is bound at '\(path)', which is not this VM's: ukeyd serves <guard directory>/\(vm).sock as \(vm)'s channel"
            )
        }
        if let guardDirectory {
            let directory = URL(fileURLWithPath: guardDirectory).standardizedFileURL.path
            for socket in domain.sockets {
                let path = URL(fileURLWithPath: socket.path).standardizedFileURL.path
                guard path.hasPrefix(directory + "/") else { continue }
                guard path == "\(directory)/\(vm).sock" else {
                    throw HypervisorError(
                        "\(socket.element) at '\(socket.path)' lies in ukey's guard directory, where only \(directory)/\(vm).sock is this VM's; refused"
                    )
                }
            }
        }
        if let vtpmDirectory {
            let directory = URL(fileURLWithPath: vtpmDirectory).standardizedFileURL.path
            let own = "\(directory)/\(vm).sock"
            for socket in domain.sockets {
                let path = URL(fileURLWithPath: socket.path).standardizedFileURL.path
                guard path.hasPrefix(directory + "/"), path != own || !domain.vtpmSockets.contains(socket.path) else {
                    continue
                }
                throw HypervisorError(
                    "\(socket.element) at '\(socket.path)' lies in ukey's vTPM directory, where only \(own) is this VM's TPM; refused"
                )
            }
            for path in domain.vtpmSockets where URL(fileURLWithPath: path).standardizedFileURL.path != own {
                throw HypervisorError(
                    "its TPM connects to '\(path)', a swtpm ukeyd does not run (its state would open for any start): ukeyd runs \(vm)'s vTPM at \(own)"
                )
            }
        }
        vtpm = !domain.vtpmSockets.isEmpty
        session = domain.session
        var images: [Step] = []
        var own: [Step] = []
        if let loader = domain.loader { own.append(Step(entity: vm, component: "loader", source: .file(loader))) }
        if let template = domain.nvramTemplate {
            own.append(Step(entity: vm, component: "nvram-template", source: .file(template)))
        }
        if let nvram = domain.nvram {
            own.append(Step(entity: vm, component: "nvram", source: .file(nvram), writable: true))
        }
        if let kernel = domain.kernel { own.append(Step(entity: vm, component: "kernel", source: .file(kernel))) }
        if let initrd = domain.initrd { own.append(Step(entity: vm, component: "initrd", source: .file(initrd))) }
        if let dtb = domain.dtb { own.append(Step(entity: vm, component: "dtb", source: .file(dtb))) }
        for (index, table) in domain.acpiTables.enumerated() {
            own.append(Step(entity: vm, component: "acpi-table-\(index + 1)", source: .file(table)))
        }
        if let cmdline = domain.cmdline { own.append(Step(entity: vm, component: "cmdline", source: .text(cmdline))) }
        for (index, disk) in domain.disks.enumerated() {
            guard let source = disk.source else { continue }  // an empty CD-ROM drive: nothing is loaded
            guard disk.type == "file" || disk.type == "block" else {
                throw HypervisorError(
                    "disk \(disk.target ?? "#\(index + 1)") is of type '\(disk.type)', which ukey cannot measure; use a file or block disk"
                )
            }
            let target = disk.target ?? "\(index + 1)"
            own.append(
                Step(
                    entity: vm,
                    component: "disk-\(target)",
                    source: .file(source),
                    writable: !disk.readOnly && !disk.shareable && disk.device != "cdrom"
                )
            )
            guard disk.type == "file" else { continue }
            let layers = try chain(source, disk.format)
            try Self.agree(disk, with: layers, target: target)
            // Below the disk's own image, deepest first: each layer an entity of its own.
            let below = Array(layers.dropFirst().reversed())
            var parent: String?
            for layer in below {
                let entity = Self.entityName(forImage: layer.path)
                let step = Step(entity: entity, component: "image", source: .file(layer.path), imageParent: parent)
                if !images.contains(step) { images.append(step) }
                parent = entity
            }
        }
        steps = images + own
    }

    /// A `<backingStore>` chain libvirt will use instead of the headers must be the headers'
    /// chain: the same layers, in order, of the same formats (all of it when it ends with an
    /// empty `<backingStore/>`, else as far as it goes).
    static func agree(_ disk: DomainXML.Disk, with layers: [BackingChain.Layer], target: String) throws(HypervisorError)
    {
        guard let written = disk.backingStore else { return }
        let headers = Array(layers.dropFirst())
        func same(_ a: String, _ b: String) -> Bool {
            URL(fileURLWithPath: a).resolvingSymlinksInPath().path
                == URL(fileURLWithPath: b).resolvingSymlinksInPath().path
        }
        for (index, layer) in written.enumerated() {
            guard index < headers.count else {
                throw HypervisorError(
                    "disk \(target): its <backingStore> names \(layer.path) as layer \(index + 1), but the images' headers end before it; refused"
                )
            }
            guard same(layer.path, headers[index].path), layer.format == headers[index].format else {
                throw HypervisorError(
                    "disk \(target): its <backingStore> names \(layer.path) (\(layer.format)) as layer \(index + 1), but the images' headers name \(headers[index].path) (\(headers[index].format)); QEMU would open what the XML says; refused"
                )
            }
        }
        if disk.backingStoreTerminated, written.count < headers.count {
            throw HypervisorError(
                "disk \(target): its <backingStore> ends the chain after \(written.count) layer(s), but the images' headers go on to \(headers[written.count].path); refused"
            )
        }
    }

    /// `/var/lib/libvirt/images/debian-base.qcow2` -> `debian-base`.
    public static func entityName(forImage path: String) -> String {
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        return String(stem.map { allowed.contains($0) ? $0 : "-" }.prefix(64))
    }

    public static func isEntityName(_ name: String) -> Bool {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        return (1...64).contains(name.count) && name.allSatisfy { allowed.contains($0) }
    }
}
