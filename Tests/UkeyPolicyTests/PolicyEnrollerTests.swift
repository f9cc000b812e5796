import Testing
import UkeyCore
import UkeyPolicy

@Suite("Policy enrolment")
struct PolicyEnrollerTests {
    static let text = """
        # keep this comment
        version: 1
        entities:
          - name: vmm
            parent: root
            kind: host
            components:
              - name: kernel
                file: /boot/vmlinuz   # the host kernel
              - name: initrd
                digest: sha256:\(String(repeating: "0", count: 64))  # stale
                file: /boot/initrd.img
              - name: cmdline
                digest: sha256:\(String(repeating: "1", count: 64))

        """

    @Test("fills and refreshes digests from files, keeping comments and layout")
    func enroll() throws {
        let (out, changes) = try PolicyEnroller.enroll(Self.text, file: "p.yaml") { path in
            Digest.of(Array(path.utf8))
        }
        #expect(changes.map(\.component) == ["kernel", "initrd"])
        #expect(changes[0].old == nil && changes[1].old != nil)
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "# keep this comment")
        #expect(lines[8] == "        file: /boot/vmlinuz   # the host kernel")
        #expect(lines[9] == "        digest: \(Digest.of(Array("/boot/vmlinuz".utf8)))")
        #expect(lines[11] == "        digest: \(Digest.of(Array("/boot/initrd.img".utf8)))  # stale")
        // The untouched component keeps its digest; the result lints clean.
        #expect(out.contains("sha256:\(String(repeating: "1", count: 64))"))
        let policy = try PolicyParser.parse(out, file: "p.yaml")
        #expect(PolicyLinter.lint(policy).isEmpty)
        // Enrolling again changes nothing.
        let (again, _) = try PolicyEnroller.enroll(out, file: "p.yaml") { Digest.of(Array($0.utf8)) }
        #expect(again == out)
    }

    @Test("flow-style components are refused with a clear error")
    func flowStyle() {
        let text =
            "version: 1\nentities:\n  - name: a\n    parent: root\n    kind: host\n    components: [{name: k, file: /k}]\n"
        #expect(throws: PolicyError.self) {
            try PolicyEnroller.enroll(text, file: "p") { Digest.of(Array($0.utf8)) }
        }
    }

    @Test("a file that cannot be hashed stops enrolment")
    func hashFailure() {
        struct Unreadable: Error {}
        #expect(throws: Unreadable.self) {
            try PolicyEnroller.enroll(Self.text, file: "p") { _ in throw Unreadable() }
        }
    }
}
