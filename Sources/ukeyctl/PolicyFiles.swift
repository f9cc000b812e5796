import ArgumentParser
import UkeyCore
import UkeyPolicy
#if canImport(Glibc)
import Glibc
#endif

/// The one place ukeyctl reads and writes files; parsers take bytes.
enum PolicyFiles {
    /// The bytes of `path`, or exit 2 with the reason.
    static func read(_ path: String) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw InputError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count > 0 { bytes += buffer[0..<count] }
            if bytes.count > PolicyParser.maxPolicyBytes {
                throw InputError("\(path) is larger than \(PolicyParser.maxPolicyBytes) bytes")
            }
            if count < buffer.count { break }
        }
        guard ferror(file) == 0 else { throw InputError("cannot read \(path)") }
        return bytes
    }

    /// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half.
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw InputError("cannot write \(path): \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                unlink(temporary)
                throw InputError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += n
        }
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw InputError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Parses a policy file, printing its problems and exiting 1 when it has any.
    static func load(_ path: String) throws -> Policy {
        do {
            return try PolicyParser.parse(bytes: read(path), file: path)
        } catch let error as PolicyError {
            for diagnostic in error.diagnostics { print(diagnostic) }
            throw ExitCode.checkFailed
        }
    }

    /// Parses a policy file and builds its expected set, printing every problem and exiting 1
    /// when it is not fit to load.
    static func loadForUse(_ path: String) throws -> (Policy, ExpectedSet) {
        let policy = try load(path)
        do {
            return (policy, try policy.expectedSet())
        } catch {
            for diagnostic in error.diagnostics { print(diagnostic) }
            throw ExitCode.checkFailed
        }
    }

    /// A component's file under `root` (`--root` lets a test or demo stand in for `/`).
    static func resolve(_ file: String, root: String?) -> String {
        guard let root, !root.isEmpty, root != "/" else { return file }
        return (root.hasSuffix("/") ? String(root.dropLast()) : root) + file
    }
}

extension HashAlgorithm: ExpressibleByArgument {}
