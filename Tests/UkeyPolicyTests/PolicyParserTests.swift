import Foundation
import Testing
import UkeyCore
import UkeyPolicy
import UkeyTesting

@Suite("Policy parsing and linting")
struct PolicyParserTests {
    static let digestA = "sha256:" + String(repeating: "a", count: 64)
    static let digestB = "sha256:" + String(repeating: "b", count: 64)

    /// Parses and lints; returns every problem as `line:col: message` (the file name dropped).
    static func problems(_ text: String) -> [String] {
        let diagnostics: [PolicyDiagnostic]
        do {
            diagnostics = PolicyLinter.lint(try PolicyParser.parse(text, file: "p.yaml"))
        } catch {
            diagnostics = error.diagnostics
        }
        return diagnostics.map { "\($0.location.line):\($0.location.column): \($0.message)" }
    }

    static func policy(entities: String, extra: String = "") -> String {
        "version: 1\nmode: enforce\nentities:\n" + entities + extra
    }

    @Test("every file in policies/ parses and lints clean, and builds its expected set")
    func shippedPolicies() throws {
        let directory = PackagePaths.root() + "/policies"
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }
            .sorted()
        #expect(files.contains("kvm-host.yaml") && files.contains("demo.yaml"))
        for name in files {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)")))
            let policy = try PolicyParser.parse(bytes: bytes, file: name)
            #expect(PolicyLinter.lint(policy).isEmpty, "\(name) has lint problems")
            let expected = try policy.expectedSet()
            #expect(!expected.entities.isEmpty)
        }
    }

    @Test("kvm-host.yaml has the paper's shape: user VMs over a base image, loader and kernel under the IO VM")
    func kvmHostShape() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: PackagePaths.root() + "/policies/kvm-host.yaml")))
        let policy = try PolicyParser.parse(bytes: bytes, file: "kvm-host.yaml")
        let expected = try policy.expectedSet()
        let userVMs = expected.entities.filter { $0.kind == .userVM }
        #expect(userVMs.count >= 2)
        for vm in userVMs { #expect(expected.entity(named: vm.parent)?.kind == .baseImage) }
        #expect(expected.entities.contains { $0.kind == .loader } && expected.entities.contains { $0.kind == .kernel })
        let vmmChildKinds = Set(expected.children(of: "vmm").compactMap { expected.entity(named: $0)?.kind })
        #expect(vmmChildKinds.contains(.serviceVM))
        #expect(policy.users.count == 2 && !policy.runtime.isEmpty)
    }

    @Test("a cycle is reported at each entity on it")
    func cycle() {
        let text = Self.policy(
            entities: """
                  - name: a
                    parent: b
                    kind: host
                    components: [{name: k, digest: \(Self.digestA)}]
                  - name: b
                    parent: a
                    kind: host
                    components: [{name: k, digest: \(Self.digestA)}]

                """
        )
        let found = Self.problems(text)
        #expect(found.count == 2)
        #expect(found[0].hasPrefix("5:13: entity 'a' is on a cycle (a -> b -> a)"))
        #expect(found[1].hasPrefix("9:13: entity 'b' is on a cycle (b -> a -> b)"))
    }

    @Test("an unknown parent is reported at the parent's value, with a suggestion")
    func unknownParent() {
        let text = Self.policy(
            entities: """
                  - name: vmm
                    parent: root
                    kind: host
                    components: [{name: k, digest: \(Self.digestA)}]
                  - name: guest
                    parent: vnm
                    kind: user-vm
                    components: [{name: k, digest: \(Self.digestA)}]

                """
        )
        #expect(Self.problems(text) == ["9:13: entity 'guest' names unknown parent 'vnm'; did you mean 'vmm'?"])
    }

    @Test("a duplicate entity name is reported at the second one")
    func duplicateName() {
        let text = Self.policy(
            entities: """
                  - name: vmm
                    parent: root
                    kind: host
                    components: [{name: k, digest: \(Self.digestA)}]
                  - name: vmm
                    parent: root
                    kind: host
                    components: [{name: k, digest: \(Self.digestB)}]

                """
        )
        #expect(Self.problems(text) == ["8:11: duplicate entity 'vmm' (first declared at line 4)"])
    }

    @Test("a bad digest is reported at its value with the reason")
    func badDigest() {
        let text = Self.policy(
            entities: """
                  - name: vmm
                    parent: root
                    kind: host
                    components:
                      - name: kernel
                        digest: sha256:\(String(repeating: "AB", count: 32))

                """
        )
        #expect(Self.problems(text) == ["9:17: digest: digest hex must be lower case"])
        let short = text.replacingOccurrences(of: String(repeating: "AB", count: 32), with: "abcd")
        #expect(Self.problems(short) == ["9:17: digest: a sha256 digest has 64 hex digits, got 4"])
    }

    @Test("a typo'd key is reported at the key with a suggestion")
    func typoKey() {
        let text = Self.policy(
            entities: """
                  - name: vmm
                    parent: root
                    kind: host
                    compnents:
                      - name: kernel
                        digest: \(Self.digestA)

                """
        )
        let found = Self.problems(text)
        #expect(found.count == 2)
        #expect(found[0] == "4:5: an entity lacks the required key 'components'")
        #expect(found[1].hasPrefix("7:5: unknown key 'compnents' in an entity; did you mean 'components'?"))
        #expect(
            Self.problems("version: 1\nentites: []\n").contains {
                $0.hasPrefix("2:1: unknown key 'entites' in the policy; did you mean 'entities'?")
            }
        )
    }

    @Test("the other lint rules each name their line")
    func otherRules() {
        let text = Self.policy(
            entities: """
                  - name: vmm
                    parent: root
                    kind: host
                    register: 3
                    components:
                      - name: kernel
                        file: /boot/vmlinuz
                      - name: kernel
                        digest: \(Self.digestA)
                  - name: root
                    parent: root
                    kind: host
                    components: [{name: k, digest: \(Self.digestA)}]

                """,
            extra: """
                users:
                  - name: alice
                    vms: [office]
                runtime:
                  - vm: ghost
                    allow:
                      - path: /usr/bin/a
                        digest: \(Self.digestA)
                      - path: /usr/bin/a
                        digest: \(Self.digestA)

                """
        )
        #expect(
            Self.problems(text) == [
                "7:15: register 3 of 'vmm' is out of range: registers 0-7 belong to platform firmware; use 8-23",
                "9:15: component 'kernel' of 'vmm' has no digest; run 'ukeyctl policy enroll' to compute it from /boot/vmlinuz",
                "11:15: duplicate component 'kernel' in 'vmm' (first at line 9)",
                "13:11: 'root' is the trusted root itself; it is implicit and cannot be declared",
                "19:11: user 'alice' may start unknown VM 'office'",
                "21:9: runtime rules for unknown VM 'ghost'",
                "25:15: '/usr/bin/a' with this digest is listed twice for VM 'ghost'",
            ]
        )
    }

    @Test(
        "shape errors are clear",
        arguments: [
            ("version: one\nentities: []\n", "1:10: version must be a whole number, got 'one'"),
            ("version: 0\nentities: []\n", "1:10: version must be between 1 and"),
            ("version: 1\nmode: strict\nentities: []\n", "2:7: mode must be enforce or audit, got 'strict'"),
            ("version: 1\nentities: {a: 1}\n", "2:11: entities must be a list"),
            ("- 1\n- 2\n", "1:1: the policy must be a mapping"),
            ("version: 1\nversion: 2\nentities: []\n", "duplicate keys"),
            ("version: 1\nentities: [\n", "3:1: YAML syntax"),
            ("version: &v 1\nentities: []\n", "1:10: anchors and aliases"),
            ("", "policy is empty"),
            ("version: 1\nentities:\n  - name: a/b\n", "3:11: entity name 'a/b' must be"),
            (
                "version: 1\nentities: []\nruntime:\n  - vm: x\n    allow:\n      - path: usr/bin/a\n",
                "6:15: path must be an absolute path"
            ),
            ("version: 1\nentities: []\nruntime:\n  - vm: x\n    on-timeout: maybe\n", "5:17: on-timeout must be"),
        ]
    )
    func shapeErrors(text: String, expected: String) {
        let found = Self.problems(text)
        #expect(found.contains { $0.contains(expected) }, "got \(found)")
    }

    @Test("bytes that are not UTF-8, or hold NUL, are refused")
    func encoding() {
        #expect(throws: PolicyError.self) { try PolicyParser.parse(bytes: [0x76, 0xff, 0xfe], file: "x") }
        #expect(throws: PolicyError.self) { try PolicyParser.parse("version: 1\u{0}\nentities: []", file: "x") }
    }

    @Test(
        "lines end in LF or CRLF: a lone CR or a Unicode line separator (which YAML breaks at and editors do not) is refused at its line"
    )
    func lineBreaks() throws {
        let policy = Self.policy(
            entities:
                "  - name: guest\n    parent: root\n    kind: user-vm\n    components: [{name: d, digest: \(Self.digestA)}]\n"
        )
        #expect(throws: Never.self) {
            try PolicyParser.parse(policy.replacingOccurrences(of: "\n", with: "\r\n"), file: "crlf.yaml")
        }
        for separator in ["\r", "\u{85}", "\u{2028}", "\u{2029}"] {
            let text = policy.replacingOccurrences(of: "mode: enforce\n", with: "mode: enforce\(separator)# c\n")
            #expect { try PolicyParser.parse(text, file: "p.yaml") } throws: { error in
                let diagnostic = (error as? PolicyError)?.diagnostics.first
                return diagnostic?.location.line == 2 && diagnostic?.message.contains("LF or CRLF") == true
            }
        }
    }

    @Test(
        "every truncated prefix and random corruption of a policy is read as a part of the whole, or refused at a line of the file"
    )
    func truncationAndCorruption() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: PackagePaths.root() + "/policies/demo.yaml")))
        let whole = try PolicyParser.parse(bytes: bytes, file: "demo")
        let wholeEntities = Dictionary(uniqueKeysWithValues: whole.entities.map { ($0.name, $0) })

        /// A refusal names the file it was given and a line inside it, with a message.
        func checkRefusal(_ error: PolicyError, file: String, of input: [UInt8], _ context: String) {
            let lines = input.split(separator: 0x0A, omittingEmptySubsequences: false).count
            #expect(!error.diagnostics.isEmpty, "\(context)")
            for diagnostic in error.diagnostics {
                #expect(
                    diagnostic.location.file == file && (1...lines + 1).contains(diagnostic.location.line)
                        && !diagnostic.message.isEmpty,
                    "\(diagnostic); \(context)"
                )
            }
        }

        func fingerprint(_ policy: Policy) -> [String] {
            policy.entities.map { entity in
                "\(entity.name) \(entity.parent) \(entity.kind) \(entity.effectiveRegister) "
                    + entity.components.map { "\($0.name)=\($0.digest.map { "\($0)" } ?? "-")" }.joined(separator: ",")
            } + policy.users.map { "\($0.name) \($0.roles)" }
                + policy.runtime.map { "\($0.vm) \($0.defaultDecision) \($0.allow.map(\.path))" }
        }

        var accepted = 0
        var refused = 0
        for length in stride(from: 0, to: bytes.count, by: 3) {
            let prefix = Array(bytes[..<length])
            do {
                let policy = try PolicyParser.parse(bytes: prefix, file: "cut")
                _ = PolicyLinter.lint(policy)
                accepted += 1
                // A prefix can only say less than the whole: each entity it declares is the whole's,
                // with the same parent and kind, and with no component the whole lacks.
                for entity in policy.entities {
                    let full = wholeEntities[entity.name]
                    #expect(
                        full?.parent == entity.parent && full?.kind == entity.kind,
                        "prefix of \(length) bytes declares \(entity.name) otherwise"
                    )
                    let fullComponents = Set(
                        full?.components.map { "\($0.name) \($0.digest.map { "\($0)" } ?? "")" } ?? []
                    )
                    for component in entity.components where component.digest != nil {
                        #expect(
                            fullComponents.contains("\(component.name) \(component.digest!)"),
                            "prefix of \(length) bytes invents \(entity.name)/\(component.name)"
                        )
                    }
                }
            } catch {
                refused += 1
                checkRefusal(error, file: "cut", of: prefix, "prefix of \(length) bytes")
            }
        }
        #expect(refused > 0 && accepted > 0)

        var rng = SeededRandom.forTest()
        for _ in 0..<300 {
            var mutated = bytes
            for _ in 0..<4 {
                mutated[Int.random(in: 0..<mutated.count, using: &rng)] = UInt8.random(in: 0...127, using: &rng)
            }
            do {
                let first = try PolicyParser.parse(bytes: mutated, file: "fuzz")
                _ = PolicyLinter.lint(first)
                // Reading is deterministic: the same bytes give the same declarations.
                let again = try PolicyParser.parse(bytes: mutated, file: "fuzz")
                #expect(fingerprint(first) == fingerprint(again), "\(rng)")
            } catch {
                checkRefusal(error, file: "fuzz", of: mutated, "\(rng)")
            }
        }
    }

    @Test("defaults: mode enforce, runtime default deny, register from the kind")
    func defaults() throws {
        let text = Self.policy(
            entities:
                "  - name: guest\n    parent: root\n    kind: user-vm\n    components: [{name: d, digest: \(Self.digestA)}]\n",
            extra: "runtime:\n  - vm: guest\n"
        ).replacingOccurrences(of: "mode: enforce\n", with: "")
        let policy = try PolicyParser.parse(text, file: "p")
        #expect(policy.mode == .enforce)
        #expect(policy.runtime[0].defaultDecision == .deny)
        #expect(try policy.expectedSet().entity(named: "guest")?.register == 11)
    }
    @Test(
        "YAML that is expensive to compose is refused from libyaml's events, before Yams builds a tree, in less time than a real policy takes to read",
        arguments: [
            ("slow-nested-explicit-keys.yaml", "keys must be plain words, not lists"),
            ("alias-key-expansion.yaml", "anchors and aliases (& and *) are not allowed"),
        ]
    )
    func expensiveShapes(input: String, expected: String) throws {
        let corpus = PackagePaths.root() + "/Tests/Fuzz/Corpus/policy/"
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: corpus + input)))
        let demo = Array(try Data(contentsOf: URL(fileURLWithPath: PackagePaths.root() + "/policies/demo.yaml")))
        let clock = ContinuousClock()
        // The best of five of each: the bound is a ratio to reading the demo policy on the same
        // machine in the same run. Before the check, the first input took 15 s and the second
        // more than a minute, against milliseconds for the demo.
        var refuse = Duration.seconds(3600)
        var read = Duration.seconds(3600)
        for _ in 0..<5 {
            refuse = min(
                refuse,
                clock.measure {
                    #expect { try PolicyParser.parse(bytes: bytes, file: "p.yaml") } throws: { error in
                        (error as? PolicyError)?.diagnostics.count == 1
                            && (error as? PolicyError)?.diagnostics[0].message.contains(expected) == true
                    }
                }
            )
            read = min(read, clock.measure { _ = try? PolicyParser.parse(bytes: demo, file: "demo.yaml") })
        }
        #expect(refuse < read * 4, "refusing \(input) took \(refuse), reading the demo policy \(read)")
    }

    @Test(
        "keys are scalars, nesting is bounded, and nothing is anchored: each refused at its place",
        arguments: [
            ("version: 1\n[a, b]: c\nentities: []\n", "2:1: keys must be plain words, not lists"),
            ("version: 1\nentities: [{{a: b}: c}]\n", "2:13: keys must be plain words, not mappings"),
            ("version: 1\n? - x\n: y\nentities: []\n", "2:3: keys must be plain words, not lists"),
            ("version: 1\nentities: []\nusers: *u\n", "3:8: anchors and aliases"),
            ("version: 1\nentities: &e []\n", "2:11: anchors and aliases"),
            (
                "version: 1\nentities: " + String(repeating: "[", count: 16) + String(repeating: "]", count: 16) + "\n",
                "2:26: nested more than 16 deep"
            ),
        ]
    )
    func refusedShapes(text: String, expected: String) {
        let found = Self.problems(text)
        #expect(found == [expected] || (found.count == 1 && found[0].hasPrefix(expected)), "got \(found)")
    }

    @Test("explicit scalar keys and fifteen levels of nesting are still YAML a policy may use")
    func allowedShapes() {
        #expect(Self.problems("? version\n: 1\nentities: []\n") == [])
        let deep =
            "version: 1\nentities: []\nusers: " + String(repeating: "[", count: 14) + String(repeating: "]", count: 14)
            + "\n"
        #expect(!Self.problems(deep).contains { $0.contains("nested") })
    }
}
