import Foundation
import Glibc
import UkeyCore

/// A policy's reference to a large whitelist kept beside it: `allow-list: {file: F, digest: D}`.
/// The signed policy pins the list by digest, so the list needs no signature of its own.
public struct AllowListReference: Sendable, Hashable {
    public var file: String
    public var digest: Digest
    public var location: SourceLocation
}

/// Why an allow-list cannot be used; names the file and line.
public struct AllowListError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Reads an allow-list in `sha256sum` format, one `<64 hex>  <absolute path>` per line (so
/// `find /usr/bin -type f -exec sha256sum {} +` makes one), blank lines and `#` comments
/// allowed. Untrusted until its digest is checked: bounded, streamed in 1 MiB chunks and hashed
/// as it is read, so a list of millions of entries costs its index, not its size, in memory.
public enum AllowListReader {
    public static let maxBytes: Int64 = 4 << 30
    public static let maxLineBytes = 4096 + 67
    public static let maxEntries = 50_000_000

    /// Calls `add` for every entry with the path and the digest; returns the digest of the file's
    /// bytes and the entry count. The caller compares the digest with the policy's before it
    /// trusts what it added.
    public static func read(
        path: String,
        algorithm: HashAlgorithm,
        add: (String, Digest) -> Void
    ) throws(AllowListError) -> (digest: Digest, entries: Int) {
        try readRaw(path: path, algorithm: algorithm) { pathBytes, sha256 in
            add(String(decoding: pathBytes, as: UTF8.self), try! Digest(algorithm: .sha256, bytes: Array(sha256)))
        }
    }

    /// The same, handing out each entry's path bytes (UTF-8) and 32 digest bytes without copies.
    /// With `copyTo`, the bytes read are also written (0600, fsynced) to that file: a daemon checks
    /// and keeps the very bytes it read, in one pass.
    public static func readRaw(
        path: String,
        algorithm: HashAlgorithm,
        copyTo: String? = nil,
        add: (_ path: UnsafeRawBufferPointer, _ sha256: UnsafeRawBufferPointer) -> Void
    ) throws(AllowListError) -> (digest: Digest, entries: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw AllowListError("cannot open the allow-list \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var copy: Int32 = -1
        if let copyTo {
            copy = open(copyTo, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard copy >= 0 else { throw AllowListError("cannot write \(copyTo): \(String(cString: strerror(errno)))") }
        }
        defer { if copy >= 0 { close(copy) } }
        var hasher = StreamingHasher(algorithm)
        var pending: [UInt8] = []
        var total: Int64 = 0
        var lineNumber = 0
        var entries = 0
        let chunkSize = 1 << 20
        while true {
            var failed = false
            let chunk = [UInt8](unsafeUninitializedCapacity: chunkSize) { raw, count in
                let n = Glibc.read(fd, raw.baseAddress!, chunkSize)
                failed = n < 0
                count = max(0, n)
            }
            guard !failed else {
                throw AllowListError("cannot read the allow-list \(path): \(String(cString: strerror(errno)))")
            }
            total += Int64(chunk.count)
            guard total <= maxBytes else { throw AllowListError("the allow-list \(path) is over \(maxBytes) bytes") }
            chunk.withUnsafeBytes { hasher.update($0) }
            if copy >= 0 {
                var written = 0
                while written < chunk.count {
                    let n = chunk.withUnsafeBytes {
                        Glibc.write(copy, $0.baseAddress! + written, chunk.count - written)
                    }
                    guard n > 0 else {
                        throw AllowListError("cannot write the copy of \(path): \(String(cString: strerror(errno)))")
                    }
                    written += n
                }
                if chunk.isEmpty && fsync(copy) != 0 { throw AllowListError("cannot sync the copy of \(path)") }
            }
            let atEnd = chunk.isEmpty
            pending += chunk
            var start = 0
            while let newline = pending[start...].firstIndex(of: 0x0A) {
                lineNumber += 1
                if try parse(pending[start..<newline], path: path, line: lineNumber, add: add) {
                    entries += 1
                    guard entries <= maxEntries else {
                        throw AllowListError("the allow-list \(path) has over \(maxEntries) entries")
                    }
                }
                start = newline + 1
            }
            pending.removeSubrange(0..<start)
            guard pending.count <= maxLineBytes else {
                throw AllowListError("\(path):\(lineNumber + 1): the line is longer than \(maxLineBytes) bytes")
            }
            if atEnd {
                if !pending.isEmpty, try parse(pending[...], path: path, line: lineNumber + 1, add: add) {
                    entries += 1
                }
                return (hasher.finalize(), entries)
            }
        }
    }

    /// One line; false for a blank line or a comment.
    static func parse(
        _ line: ArraySlice<UInt8>,
        path: String,
        line number: Int,
        add: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void
    ) throws(AllowListError) -> Bool {
        var line = line
        if line.last == 0x0D { line = line.dropLast() }
        guard let first = line.first, first != UInt8(ascii: "#") else { return false }
        func fail(_ why: String) -> AllowListError { AllowListError("\(path):\(number): \(why)") }
        guard line.count <= maxLineBytes else { throw fail("the line is longer than \(maxLineBytes) bytes") }
        guard first != UInt8(ascii: "\\") else {
            throw fail("escaped file names (a leading backslash) are not supported")
        }
        guard line.count > 66 else { throw fail("expected '<64 hex digits>  <absolute path>'") }
        let hexEnd = line.startIndex + 64
        var bytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let valid = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
            var i = 0
            for index in stride(from: line.startIndex, to: hexEnd, by: 2) {
                guard let high = nibble(line[index]), let low = nibble(line[index + 1]) else { return false }
                out[i] = high << 4 | low
                i += 1
            }
            return true
        }
        guard valid else { throw fail("the digest must be 64 lower-case hex digits") }
        guard line[hexEnd] == UInt8(ascii: " "),
            line[hexEnd + 1] == UInt8(ascii: " ") || line[hexEnd + 1] == UInt8(ascii: "*")
        else {
            throw fail("expected two spaces (or ' *') between the digest and the path")
        }
        let file = line[(hexEnd + 2)...]
        guard file.first == UInt8(ascii: "/") else { throw fail("the path must be absolute") }
        // Paths are bytes on Linux; one that is not UTF-8 can never match a call (JSON is UTF-8),
        // so it is kept as it is rather than refused.
        guard !file.contains(0) else { throw fail("the path contains a NUL byte") }
        file.withUnsafeBytes { pathBytes in
            withUnsafeBytes(of: &bytes) { add(pathBytes, $0) }
        }
        return true
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
