import Foundation
import Testing
import UkeyCore
import UkeyPolicy
import UkeyTesting

@Suite("Run-time whitelist and allow-lists")
struct WhitelistTests {
    static let policy = """
        version: 1
        entities:
          - name: vmm
            parent: root
            kind: hypervisor
            components:
              - name: qemu
                digest: sha256:\(String(repeating: "a", count: 64))
          - name: office
            parent: vmm
            kind: user-vm
            components:
              - name: disk
                digest: sha256:\(String(repeating: "b", count: 64))
        runtime:
          - vm: office
            default: deny
            allow:
              - path: /usr/bin/soffice
                digest: sha256:\(String(repeating: "1", count: 64))
              - path: /usr/bin/soffice
                digest: sha256:\(String(repeating: "2", count: 64))
          - vm: lab
            default: allow
        """

    func digest(_ c: Character) -> Digest { try! Digest(parsing: "sha256:" + String(repeating: c, count: 64)) }

    @Test(
        "exact path and digest allow; another digest is a mismatch; unknown paths get the VM's default; untrusted VMs are denied"
    )
    func decisions() throws {
        let whitelist = Whitelist(try PolicyParser.parse(bytes: Array(Self.policy.utf8), file: "p.yaml"))
        func check(
            _ vm: String,
            _ path: String,
            _ d: Character,
            trusted: Bool = true,
            mode: EnforcementMode = .enforce
        ) -> (ExecDecision, String?) {
            let v = whitelist.check(vm: vm, path: path, digest: digest(d), vmTrusted: trusted, mode: mode)
            return (v.decision, v.reason)
        }
        #expect(check("office", "/usr/bin/soffice", "1") == (.allow, nil))
        #expect(check("office", "/usr/bin/soffice", "2") == (.allow, nil))
        #expect(check("office", "/usr/bin/soffice", "3") == (.deny, "digest-mismatch"))
        #expect(check("office", "/usr/bin/nc", "1") == (.deny, "not-whitelisted"))
        #expect(check("lab", "/usr/bin/nc", "1") == (.allow, nil))
        #expect(check("office", "/usr/bin/soffice", "1", trusted: false) == (.deny, "vm-not-trusted"))
        #expect(check("nowhere", "/usr/bin/soffice", "1") == (.deny, "no-rules-for-vm"))
        let audited = check("office", "/usr/bin/nc", "1", mode: .audit)
        #expect(audited.0 == .allow && audited.1?.hasPrefix("audit-mode") == true)
        #expect(whitelist.counts["office"] == 2)
    }

    @Test("an allow-list made by the real sha256sum is read entry by entry, and its digest is that of its bytes")
    func sha256sumList() throws {
        let dir = try TemporaryDirectory()
        for name in ["alpha", "beta", "gamma"] {
            try Data("binary \(name)".utf8).write(to: URL(fileURLWithPath: dir.file(name)))
        }
        let sum = try ExternalTool("sha256sum").run([dir.file("alpha"), dir.file("beta"), dir.file("gamma")])
        #expect(sum.status == 0)
        try Data(("# made by sha256sum\n\n" + sum.stdout).utf8).write(to: URL(fileURLWithPath: dir.file("list")))
        var entries: [(String, Digest)] = []
        let (fileDigest, count) = try AllowListReader.read(path: dir.file("list"), algorithm: .sha256) {
            entries.append(($0, $1))
        }
        #expect(count == 3)
        #expect(entries.map(\.0) == [dir.file("alpha"), dir.file("beta"), dir.file("gamma")])
        #expect(entries[0].1 == Digest.of(Array("binary alpha".utf8)))
        #expect(fileDigest == Digest.of(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("list"))))))
    }

    @Test("garbage lines are refused with file:line; random bytes never crash the reader")
    func garbage() throws {
        let dir = try TemporaryDirectory()
        let good = String(repeating: "ab", count: 32) + "  /usr/bin/ok\n"
        let cases = [
            good + "not a digest  /usr/bin/x\n": ":2:",
            good + String(repeating: "AB", count: 32) + "  /usr/bin/upper\n": "lower-case hex",
            String(repeating: "ab", count: 32) + "  relative/path\n": "absolute",
            String(repeating: "ab", count: 32) + " /one/space\n": "two spaces",
            "\\" + String(repeating: "ab", count: 32) + "  /esc\\naped\n": "escaped",
            String(repeating: "ab", count: 32) + "  /" + String(repeating: "x", count: 5000) + "\n":
                "the line is longer than",
        ]
        for (text, expected) in cases {
            try Data(text.utf8).write(to: URL(fileURLWithPath: dir.file("list")))
            #expect { _ = try AllowListReader.read(path: dir.file("list"), algorithm: .sha256) { _, _ in } } throws: {
                "\($0)".contains(expected)
            }
        }
        var generator = SeededRandom.forTest()
        for _ in 0..<300 {
            var bytes = Array(good.utf8) + Array(good.utf8)
            for _ in 0..<6 {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            try Data(bytes).write(to: URL(fileURLWithPath: dir.file("list")))
            // Each entry read is a line of the file as it is, digest and path: nothing is invented.
            var entries: [String] = []
            do {
                _ = try AllowListReader.read(path: dir.file("list"), algorithm: .sha256) { path, digest in
                    entries.append("\(digest.hex)  \(path)")
                }
                let lines = Set(String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init))
                #expect(entries.allSatisfy { lines.contains($0) }, "\(entries); \(generator)")
            } catch {
                #expect("\(error)".contains(dir.file("list") + ":"), "\(error); \(generator)")
            }
        }
    }

    @Test("a policy names an allow-list by file and digest; a malformed reference is a lint error")
    func reference() throws {
        let text = Self.policy.replacingOccurrences(
            of: "  - vm: lab\n",
            with:
                "    allow-list:\n      file: office.list\n      digest: sha256:\(String(repeating: "c", count: 64))\n  - vm: lab\n"
        )
        let policy = try PolicyParser.parse(bytes: Array(text.utf8), file: "p.yaml")
        #expect(policy.runtime.first?.allowList?.file == "office.list")
        let bad = text.replacingOccurrences(of: "      file: office.list\n", with: "")
        #expect(throws: PolicyError.self) { try PolicyParser.parse(bytes: Array(bad.utf8), file: "p.yaml") }
    }
}
