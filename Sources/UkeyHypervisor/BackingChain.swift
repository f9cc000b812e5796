import Foundation

/// A disk image and the images it is layered on: the paper's incremental part (a user VM's
/// overlay) and its parent OS image. Read from the qcow2 headers themselves, so the chain that is
/// measured is the chain QEMU will open.
public enum BackingChain {
    /// At most this many layers (QEMU's own limit is higher; no real chain comes near).
    public static let maxDepth = 16

    /// `path` first, then each backing file down to the image that stands alone.
    public static func of(_ path: String) throws(HypervisorError) -> [String] {
        var chain = [path]
        var seen: Set<String> = [URL(fileURLWithPath: path).standardizedFileURL.path]
        var current = path
        while let backing = try QCOW2Header.read(path: current)?.backingFile {
            let resolved = backing.hasPrefix("/") ? backing : URL(fileURLWithPath: current).deletingLastPathComponent().appendingPathComponent(backing).path
            let normal = URL(fileURLWithPath: resolved).standardizedFileURL.path
            guard !seen.contains(normal) else { throw HypervisorError("\(path): its backing chain loops back to \(resolved)") }
            guard chain.count < maxDepth else { throw HypervisorError("\(path): its backing chain is deeper than \(maxDepth)") }
            seen.insert(normal)
            chain.append(resolved)
            current = resolved
        }
        return chain
    }
}
