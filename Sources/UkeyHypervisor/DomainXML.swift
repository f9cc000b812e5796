import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// What ukey needs of a libvirt domain's XML (the hook reads it from stdin): its name, ukey's
/// metadata, the direct-boot files, the firmware, and the disks. Untrusted input: bounded in
/// size and depth, no DOCTYPE (so no entities), and anything it cannot account for is an error.
public struct DomainXML: Sendable, Equatable {
    /// ukey's namespace for `<metadata>`: `<ukey:entity xmlns:ukey="https://ukey.dev/libvirt/1">NAME</ukey:entity>`.
    public static let namespace = "https://ukey.dev/libvirt/1"
    public static let maxBytes = 1 << 20
    static let maxDepth = 64

    public struct Disk: Sendable, Equatable {
        public var type: String
        public var device: String
        /// The image (type file) or device (type block); nil for a disk without media.
        public var source: String?
        /// The guest's name for it (vda, sdb): names its component.
        public var target: String?

        public init(type: String = "file", device: String = "disk", source: String?, target: String?) {
            self.type = type
            self.device = device
            self.source = source
            self.target = target
        }
    }

    public var name: String = ""
    /// `<ukey:entity>`: the policy entity this domain is; nil means the domain's name.
    public var entity: String?
    /// A logged-in user's session, for a user VM: the `session` attribute of `<ukey:entity>`.
    /// (An attribute, not an element of its own: libvirt keeps one metadata element per
    /// namespace, and drops the rest.) A `<ukey:session>` element is read too.
    public var session: String?
    public var kernel: String?
    public var initrd: String?
    public var cmdline: String?
    public var loader: String?
    public var nvramTemplate: String?
    public var disks: [Disk] = []
    /// Where each of the domain's ukey guard channels (a virtio channel named `io.ukey.guard.0`)
    /// is bound on the host: the socket ukeyd serves as this VM's.
    public var guardChannels: [String] = []
    public static let guardChannelName = "io.ukey.guard.0"

    public init(parsing bytes: [UInt8]) throws(HypervisorError) {
        guard !bytes.isEmpty else { throw HypervisorError("the domain XML is empty") }
        guard bytes.count <= Self.maxBytes else { throw HypervisorError("the domain XML is \(bytes.count) bytes; at most \(Self.maxBytes)") }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw HypervisorError("the domain XML is not UTF-8") }
        if bytes.firstRange(of: Array("<!DOCTYPE".utf8)) != nil || bytes.firstRange(of: Array("<!ENTITY".utf8)) != nil {
            throw HypervisorError("the domain XML has a DOCTYPE or an entity declaration, which libvirt never writes")
        }
        let reader = Reader()
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        parser.delegate = reader
        let ok = parser.parse()
        if let problem = reader.problem { throw HypervisorError("the domain XML: \(problem)") }
        guard ok else {
            throw HypervisorError("the domain XML is malformed: \(parser.parserError.map { "\($0.localizedDescription)" } ?? "parse error") (line \(parser.lineNumber))")
        }
        self = reader.domain
        guard reader.sawDomain else { throw HypervisorError("the XML is not a libvirt <domain>") }
        guard !name.isEmpty else { throw HypervisorError("the domain XML has no <name>") }
    }

    /// A guest described directly (`ukey-qemu` builds one from a qemu command line).
    public init(name: String, entity: String? = nil, session: String? = nil, kernel: String? = nil, initrd: String? = nil,
                cmdline: String? = nil, loader: String? = nil, disks: [Disk] = []) {
        self.name = name
        self.entity = entity
        self.session = session
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.loader = loader
        self.disks = disks
    }

    private init() {}

    /// A SAX reader that keeps the path of open elements and fills in what it recognises.
    private final class Reader: NSObject, XMLParserDelegate {
        var domain = DomainXML()
        var problem: String?
        var sawDomain = false
        private var path: [String] = []
        private var text = ""
        private var disk: Disk?
        /// The channel being read: its unix source path and its virtio target name.
        private var channel: (path: String?, target: String?)?

        func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            let name = namespaceURI == DomainXML.namespace ? "ukey:" + element : element
            path.append(name)
            text = ""
            guard path.count <= DomainXML.maxDepth else {
                problem = "elements nest deeper than \(DomainXML.maxDepth)"
                parser.abortParsing()
                return
            }
            switch path {
            case ["domain"]: sawDomain = true
            case ["domain", "metadata", "ukey:entity"]: if let session = attributes["session"] { domain.session = session }
            case ["domain", "os", "nvram"]: domain.nvramTemplate = attributes["template"]
            case ["domain", "devices", "disk"]:
                disk = Disk(type: attributes["type"] ?? "file", device: attributes["device"] ?? "disk", source: nil, target: nil)
            case ["domain", "devices", "disk", "source"]:
                disk?.source = attributes["file"] ?? attributes["dev"]
                if let other = attributes["name"] ?? attributes["pool"], disk?.source == nil { disk?.source = "network:" + other }
            case ["domain", "devices", "disk", "target"]: disk?.target = attributes["dev"]
            case ["domain", "devices", "channel"]: channel = (nil, nil)
            case ["domain", "devices", "channel", "source"]: channel?.path = attributes["path"]
            case ["domain", "devices", "channel", "target"]: channel?.target = attributes["type"] == "virtio" ? attributes["name"] : nil
            default: break
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            text += string
            if text.utf8.count > 65_536 {
                problem = "an element's text is longer than 64 KiB"
                parser.abortParsing()
            }
        }

        func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            switch path {
            case ["domain", "name"]: domain.name = value
            case ["domain", "metadata", "ukey:entity"]: domain.entity = value
            case ["domain", "metadata", "ukey:session"]: domain.session = value
            case ["domain", "os", "kernel"]: domain.kernel = value
            case ["domain", "os", "initrd"]: domain.initrd = value
            case ["domain", "os", "cmdline"]: domain.cmdline = text  // exactly as given: it is measured
            case ["domain", "os", "loader"]: domain.loader = value
            case ["domain", "devices", "disk"]:
                if let disk { domain.disks.append(disk) }
                disk = nil
            case ["domain", "devices", "channel"]:
                if let channel, channel.target == DomainXML.guardChannelName { domain.guardChannels.append(channel.path ?? "") }
                channel = nil
            default: break
            }
            path.removeLast()
            text = ""
        }

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
            if problem == nil { problem = "malformed (line \(parser.lineNumber)): \(parseError.localizedDescription)" }
        }
    }
}
