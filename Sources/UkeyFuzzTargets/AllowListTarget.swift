import Foundation
import UkeyCore
import UkeyPolicy

extension FuzzTarget {
    /// An allow-list file (`sha256sum` format). The reader takes a path, so each input is written
    /// to a file of this process's own in /dev/shm first.
    static let allowList = FuzzTarget(
        name: "allow-list",
        property:
            "each entry read is a line of the file as written (digest, two spaces, path); a refusal names the file",
        check: { bytes throws(FuzzFailure) in
            let path = "/dev/shm/ukey-fuzz-allow-list-\(getpid())"
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                throw FuzzFailure("cannot write \(path)")
            }
            defer { unlink(path) }
            var entries: [(String, Digest)] = []
            do throws(AllowListError) {
                _ = try AllowListReader.read(path: path, algorithm: .sha256) { entries.append(($0, $1)) }
            } catch {
                try require("\(error)".contains(path), "a refusal that does not name the file: \(error)")
                return
            }
            // Split as bytes: a String would take "\r\n" as one character and not split there
            // (the harness's first finding was its own).
            let lines = Set(
                bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
                    String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
                }
            )
            for (entryPath, digest) in entries where !entryPath.contains("\\") && !entryPath.contains("\n") {
                try require(
                    lines.contains("\(digest.hex)  \(entryPath)") || lines.contains("\(digest.hex) *\(entryPath)"),
                    "entry \(digest.hex) \(entryPath) is no line of the file"
                )
            }
        },
        seeds: {
            [
                Array(
                    ("# made by sha256sum\n\n" + String(repeating: "ab", count: 32) + "  /usr/bin/ok\n"
                        + String(repeating: "01", count: 32) + "  /usr/lib/x y\n").utf8
                ),
                Array(("\\" + String(repeating: "cd", count: 32) + "  /esc\\naped\n").utf8),
            ]
        }
    )
}
