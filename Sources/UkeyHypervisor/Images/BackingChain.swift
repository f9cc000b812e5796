import Foundation

/// A disk image and the images it is layered on: the paper's incremental part (a user VM's
/// overlay) and its parent OS image. Read from the qcow2 headers themselves, as QEMU reads them,
/// and refused where QEMU would open something the chain does not name or guess what it is: a
/// backing file named as `json:` or a protocol, a backing file whose format the image does not
/// record (QEMU 7.2 then guesses it from the content), an external data file.
public enum BackingChain {
    /// At most this many layers (QEMU's own limit is higher; no real chain comes near).
    public static let maxDepth = 16

    public struct Layer: Sendable, Equatable {
        public var path: String
        /// raw or qcow2.
        public var format: String

        public init(path: String, format: String) {
            self.path = path
            self.format = format
        }
    }

    /// `path` first (of `format`; nil: qcow2 when its content is, else raw), then each backing
    /// file down to the image that stands alone.
    public static func layers(of path: String, format: String?) throws(HypervisorError) -> [Layer] {
        var chain: [Layer] = []
        var seen: Set<String> = []
        var current = Layer(path: path, format: format ?? "qcow2")
        while true {
            let normal = URL(fileURLWithPath: current.path).standardizedFileURL.path
            guard seen.insert(normal).inserted else {
                throw HypervisorError("\(path): its backing chain loops back to \(current.path)")
            }
            guard chain.count < maxDepth else {
                throw HypervisorError("\(path): its backing chain is deeper than \(maxDepth)")
            }
            // A raw layer ends the chain: QEMU reads its bytes as they are, whatever they look like.
            guard current.format == "qcow2" else {
                chain.append(current)
                return chain
            }
            guard let header = try QCOW2Header.read(path: current.path) else {
                // Named qcow2 (by the XML, an option or the image above) but not one: QEMU would refuse it.
                guard chain.isEmpty && format == nil else {
                    throw HypervisorError("\(current.path) is not a qcow2 image, yet it is named as one")
                }
                chain.append(Layer(path: current.path, format: "raw"))
                return chain
            }
            chain.append(current)
            if header.hasExternalData || header.dataFile != nil {
                throw HypervisorError(
                    "\(current.path) keeps its data in an external file (\(header.dataFile ?? "unnamed")), which ukey does not measure"
                )
            }
            guard let backing = header.backingFile else { return chain }
            if backing.hasPrefix("json:") {
                throw HypervisorError(
                    "\(current.path) names its backing file as json:..., block nodes ukey does not measure"
                )
            }
            if let colon = backing.firstIndex(of: ":"), !backing[..<colon].contains("/") {
                throw HypervisorError(
                    "\(current.path) names its backing file '\(backing)', which QEMU reads as a '\(backing[..<colon])' protocol"
                )
            }
            guard let backingFormat = header.backingFormat else {
                throw HypervisorError(
                    "\(current.path) names its backing file \(backing) without its format, which QEMU would guess; record it (qemu-img rebase -u -F qcow2 -b \(backing) \(current.path))"
                )
            }
            guard backingFormat == "qcow2" || backingFormat == "raw" else {
                throw HypervisorError(
                    "\(current.path): its backing file is of format '\(backingFormat)'; ukey reads raw and qcow2 only"
                )
            }
            let resolved =
                backing.hasPrefix("/")
                ? backing
                : URL(fileURLWithPath: current.path).deletingLastPathComponent().appendingPathComponent(backing).path
            current = Layer(path: resolved, format: backingFormat)
        }
    }

    /// The paths of `layers(of:format:)`, the image's own format taken from its content.
    public static func of(_ path: String) throws(HypervisorError) -> [String] {
        try layers(of: path, format: nil).map(\.path)
    }
}
