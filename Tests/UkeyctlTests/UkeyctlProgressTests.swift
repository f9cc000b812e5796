import Foundation
import Testing
import UkeyTesting

/// The progress line of a long hash: drawn on a terminal (a pseudo-terminal here, through
/// util-linux's `script`), never in a pipe.
@Suite("ukeyctl's progress line while it hashes a large file")
struct UkeyctlProgressTests {
    @Test("policy enroll of a 300 MiB image: a redrawn line (bytes, rate, time left) on a terminal, none in a pipe")
    func terminalOnly() throws {
        let dir = try TemporaryDirectory("ukeyctl-progress")
        let image = dir.file("big.img")
        #expect(FileManager.default.createFile(atPath: image, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
        try handle.truncate(atOffset: 300 << 20)
        try handle.close()
        let policy = """
            version: 1
            mode: enforce
            entities:
              - name: vmm
                parent: root
                kind: host
                components:
                  - name: image
                    file: \(image)

            """
        try dir.write("policy.yaml", Array(policy.utf8))
        let ukeyctl = UkeyctlPolicyTests.binary
        let command = "\(ukeyctl) policy enroll \(dir.file("policy.yaml")) -o \(dir.file("out.yaml"))"

        let onTerminal = try ExternalTool.run("/usr/bin/script", ["-qefc", command, "/dev/null"])
        #expect(onTerminal.status == 0, "\(onTerminal.stdout) \(onTerminal.stderr)")
        #expect(
            onTerminal.stdout.contains("\rhashing big.img: ") && onTerminal.stdout.contains("MiB/s")
                && onTerminal.stdout.contains(" s left"),
            "no progress line on a terminal: \(onTerminal.stdout.debugDescription.prefix(400))"
        )
        #expect(onTerminal.stdout.contains("\r\u{1B}[K"), "the line was not wiped at the end")

        let inPipe = try ExternalTool.run(
            ukeyctl,
            ["policy", "enroll", dir.file("policy.yaml"), "-o", dir.file("out.yaml")]
        )
        #expect(inPipe.status == 0, "\(inPipe.stderr)")
        #expect(
            !inPipe.stderr.contains("\r") && !inPipe.stderr.contains("hashing"),
            "a progress line in a pipe: \(inPipe.stderr)"
        )
        #expect(inPipe.stderr.contains("vmm/image: sha256:"), "\(inPipe.stderr)")
    }
}
