import Foundation
import Testing
import UkeyCore
import UkeyPolicy
import UkeyTesting

/// Runs the built `ukeyctl` binary as a user would and pins its output and exit codes:
/// 0 ok, 1 a check failed, 2 bad usage or unreadable input.
@Suite("ukeyctl policy commands")
struct UkeyctlPolicyTests {
    static let binary = PackagePaths.builtProduct("ukeyctl")
    static let root = PackagePaths.root()

    static func ukeyctl(_ arguments: String...) throws -> ExternalTool.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        return try ExternalTool.run(binary, arguments, environment: environment)
    }

    /// The demo's stand-in images, written by the same script `make demo` uses.
    static func demoImages() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("ukey-images")
        let result = try ExternalTool.run(
            "/bin/bash",
            ["\(root)/scripts/demo-images.sh", directory.path, "\(root)/policies/demo.yaml"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        return directory
    }

    @Test(
        "every command has help",
        arguments: [
            ([], "Provision and inspect ukey"),
            (["policy"], "Check, enrol, show and dry-run policy files"),
            (["policy", "lint"], "print one 'file:line:col: message'"),
            (["policy", "enroll"], "Fill each component's digest"),
            (["policy", "show"], "entity tree"),
            (["policy", "simulate"], "Dry-run a policy's boot chain"),
        ]
    )
    func help(command: [String], text: String) throws {
        let result = try ExternalTool.run(Self.binary, command + ["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains(text))
        #expect(result.stdout.contains("USAGE:"))
    }

    @Test("lint: clean files exit 0 silently; problems exit 1, one file:line:col line each")
    func lint() throws {
        let clean = try Self.ukeyctl(
            "policy",
            "lint",
            "\(Self.root)/policies/demo.yaml",
            "\(Self.root)/policies/kvm-host.yaml"
        )
        #expect(clean.status == 0 && clean.stdout.isEmpty)

        let directory = try TemporaryDirectory()
        try directory.write(
            "bad.yaml",
            Array(
                """
                version: 1
                entities:
                  - name: vmm
                    parent: rooot
                    kind: host
                    components:
                      - name: kernel
                        digest: sha256:123
                """.utf8
            )
        )
        let bad = try Self.ukeyctl("policy", "lint", directory.file("bad.yaml"))
        #expect(bad.status == 1)
        #expect(bad.stdout == "\(directory.file("bad.yaml")):8:17: digest: a sha256 digest has 64 hex digits, got 3\n")
    }

    @Test("usage errors and unreadable files exit 2")
    func usage() throws {
        #expect(try Self.ukeyctl("policy", "lint").status == 2)
        #expect(try Self.ukeyctl("policy", "lint", "--bogus", "x").status == 2)
        let missing = try Self.ukeyctl("policy", "lint", "/nonexistent/policy.yaml")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("cannot read /nonexistent/policy.yaml"))
        #expect(
            try Self.ukeyctl("policy", "enroll", "\(Self.root)/policies/demo.yaml", "-o", "-", "--algorithm", "md5")
                .status == 2
        )
    }

    @Test("enroll computes the digests the shipped demo policy carries")
    func enrollMatchesDemo() throws {
        let images = try Self.demoImages()
        let draft = try TemporaryDirectory()
        // Strip the digests from the demo policy, then enrol it again from the images.
        let text = try String(contentsOfFile: "\(Self.root)/policies/demo.yaml", encoding: .utf8)
        // Enrolment writes each digest right below its component's `file:` line; drop exactly those.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let stripped = lines.enumerated()
            .filter { index, line in
                !(index > 0 && lines[index - 1].hasPrefix("        file:") && line.hasPrefix("        digest:"))
            }
            .map(\.element)
            .joined(separator: "\n")
        #expect(stripped.count < text.count - 13 * 70)
        try draft.write("draft.yaml", Array(stripped.utf8))
        #expect(try Self.ukeyctl("policy", "lint", draft.file("draft.yaml")).status == 1)
        #expect(try Self.ukeyctl("policy", "lint", "--draft", draft.file("draft.yaml")).status == 0)
        let enrolled = try Self.ukeyctl(
            "policy",
            "enroll",
            draft.file("draft.yaml"),
            "--root",
            images.path,
            "-o",
            draft.file("out.yaml")
        )
        #expect(enrolled.status == 0, "\(enrolled.stderr)")
        #expect(enrolled.stderr.contains("vmm/kernel: sha256:"))
        #expect(try String(contentsOfFile: draft.file("out.yaml"), encoding: .utf8) == text)
    }

    @Test("simulate: in order all trusted; tampered base taints its user VMs; out of order breaks the chain")
    func simulate() throws {
        let images = try Self.demoImages()
        let logs = try TemporaryDirectory()
        let policy = "\(Self.root)/policies/demo.yaml"

        let good = try Self.ukeyctl(
            "policy",
            "simulate",
            policy,
            "--root",
            images.path,
            "--event-log",
            logs.file("good.bin")
        )
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("└── vmm  [host, register 8]  ✔ trusted"))
        #expect(!good.stdout.contains("untrusted"))
        let log = try EventLog(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: logs.file("good.bin")))))
        #expect(log.events.count == 13)

        // Tamper with the parent OS image: it and both user VMs over it are refused.
        let base = images.path + "/var/lib/libvirt/images/debian-12-base.qcow2"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: base))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("rootkit".utf8))
        try handle.close()
        let tampered = try Self.ukeyctl("policy", "simulate", policy, "--root", images.path)
        #expect(tampered.status == 1)
        #expect(tampered.stdout.contains("measure debian-base/disk"))
        #expect(tampered.stdout.contains("MISMATCH  REFUSE  -> untrusted (digest-mismatch)"))
        // The base became untrusted first, so its user VMs carry that cause, even when measured later.
        #expect(tampered.stdout.contains("office  [user-vm, register 11]  ✘ untrusted: ancestor-untrusted"))
        #expect(tampered.stdout.contains("measure office/overlay"))
        #expect(tampered.stdout.contains("io-kernel  [kernel, register 13]  ✔ trusted"))

        // Untampered images measured out of order: office before its base image.
        let fresh = try Self.demoImages()
        let outOfOrder = try Self.ukeyctl(
            "policy",
            "simulate",
            policy,
            "--root",
            fresh.path,
            "--order",
            "vmm,office,debian-base,dev"
        )
        #expect(outOfOrder.status == 1)
        #expect(outOfOrder.stdout.contains("office  [user-vm, register 11]  ✘ untrusted: parent-not-trusted"))
        #expect(outOfOrder.stdout.contains("dev  [user-vm, register 11]  ✔ trusted"))
        #expect(outOfOrder.stdout.contains("io-vm  [service-vm, register 9]  … pending"))
    }

    @Test("show prints the tree of the shipped host policy")
    func show() throws {
        let result = try Self.ukeyctl("policy", "show", "\(Self.root)/policies/kvm-host.yaml")
        #expect(result.status == 0)
        #expect(result.stdout.contains("│       └── io-kernel  [kernel, register 13]  kernel, initrd, cmdline"))
        #expect(result.stdout.contains("alice  roles: office  may start: office"))
    }
}

@Suite("ukeyctl policy diff")
struct UkeyctlPolicyDiffTests {
    @Test("diff names every changed entity digest, user, whitelist entry and on-timeout, and says when nothing changed")
    func diff() throws {
        let directory = try TemporaryDirectory()
        let old = try String(contentsOfFile: "\(UkeyctlPolicyTests.root)/policies/demo.yaml", encoding: .utf8)
        let soffice = "sha256:5f0c3c1e2c0a3b1f3e1c55f2b3e2c1f0a9d8c7b6a5f4e3d2c1b0a99887766554"
        let new =
            old
            .replacingOccurrences(of: "version: 1", with: "version: 2")
            .replacingOccurrences(of: soffice, with: "sha256:" + String(repeating: "e", count: 64))
            .replacingOccurrences(of: "    vms: [dev, office]\n", with: "    vms: [dev]\n")
            .replacingOccurrences(
                of: "  - vm: dev\n    default: deny\n",
                with: "  - vm: dev\n    default: deny\n    on-timeout: allow\n"
            )
        try old.write(toFile: directory.file("old.yaml"), atomically: true, encoding: .utf8)
        try new.write(toFile: directory.file("new.yaml"), atomically: true, encoding: .utf8)
        let result = try UkeyctlPolicyTests.ukeyctl(
            "policy",
            "diff",
            directory.file("old.yaml"),
            directory.file("new.yaml")
        )
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("~ version 1 -> 2"))
        #expect(
            lines.contains("+ whitelist office: allow /usr/bin/soffice sha256:" + String(repeating: "e", count: 64))
        )
        #expect(lines.contains("- whitelist office: allow /usr/bin/soffice \(soffice)"))
        #expect(lines.contains("- user bob may start office"))
        #expect(lines.contains("~ whitelist dev: on-timeout by the mode -> allow"))
        #expect(lines.count == 5, "\(lines)")

        let kernel = old.split(separator: "\n").first { $0.contains("digest: sha256:") }!.split(separator: " ").last!
        let moved = old.replacingOccurrences(of: String(kernel), with: "sha256:" + String(repeating: "d", count: 64))
        try moved.write(toFile: directory.file("moved.yaml"), atomically: true, encoding: .utf8)
        let digestChange = try UkeyctlPolicyTests.ukeyctl(
            "policy",
            "diff",
            directory.file("old.yaml"),
            directory.file("moved.yaml")
        )
        #expect(digestChange.stdout.contains(": digest \(kernel) -> sha256:" + String(repeating: "d", count: 64)))
        #expect(digestChange.stdout.contains("WARNING: version 1 is not above 1"))

        let same = try UkeyctlPolicyTests.ukeyctl(
            "policy",
            "diff",
            directory.file("old.yaml"),
            directory.file("old.yaml")
        )
        #expect(same.stdout.contains("no changes"))
        #expect(
            try UkeyctlPolicyTests.ukeyctl("policy", "diff", directory.file("old.yaml"), directory.file("missing.yaml"))
                .status == 2
        )
    }
}
