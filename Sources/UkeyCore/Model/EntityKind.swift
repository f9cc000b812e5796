/// What an entity is on the host. The paper's boot order (section 3.2) is root -> VMM -> service
/// VMs and user VMs -> OS loader -> OS kernel; the kind labels where an entity sits in it.
///
/// The label is free text so that a site can add its own kinds; ukey gives meaning to `user-vm`
/// (starting one needs an authenticated user) and uses the kind to pick a default register.
public struct EntityKind: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The VMM: host kernel, initrd, qemu/KVM binaries, libvirt.
    public static let host = EntityKind(rawValue: "host")
    /// An IO VM or management VM.
    public static let serviceVM = EntityKind(rawValue: "service-vm")
    /// A parent OS image that user VMs are layered on (the paper's "parent OS").
    public static let baseImage = EntityKind(rawValue: "base-image")
    /// A user VM: its incremental part (a qcow2 overlay) over a base image.
    public static let userVM = EntityKind(rawValue: "user-vm")
    /// An OS loader (firmware, bootloader).
    public static let loader = EntityKind(rawValue: "loader")
    /// An OS kernel with its initrd and command line.
    public static let kernel = EntityKind(rawValue: "kernel")

    /// The kinds ukey documents; others are accepted as labels.
    public static let known: [EntityKind] = [.host, .serviceVM, .baseImage, .userVM, .loader, .kernel]

    /// The register an entity of this kind extends when its policy names none.
    ///
    /// Registers 0-7 belong to platform firmware on a TPM (TCG PC Client PFP, section 3.3.4), so ukey
    /// starts at 8: host 8, service VM 9, base image 10, user VM 11, loader 12, kernel 13, any other
    /// kind 14.
    public var defaultRegister: Int {
        switch self {
        case .host: 8
        case .serviceVM: 9
        case .baseImage: 10
        case .userVM: 11
        case .loader: 12
        case .kernel: 13
        default: 14
        }
    }

    public var description: String { rawValue }
}
