import UkeyCore
import Yams

/// Turns policy text (untrusted: it may come over the socket) into a `Policy`, or every problem
/// found in it with `file:line:column`.
///
/// Parsing checks shape and values (keys, types, digests, names); `PolicyLinter` then checks the
/// relations between declarations (parents, cycles, references).
public enum PolicyParser {
    /// Far above a real policy (a 1,000,000-entry whitelist is about 120 MB), far below memory.
    public static let maxPolicyBytes = 256 << 20

    static let topKeys = ["version", "mode", "entities", "users", "runtime"]
    static let entityKeys = ["name", "parent", "register", "kind", "components", "vtpm"]
    static let componentKeys = ["name", "digest", "file", "writable"]
    static let userKeys = ["name", "roles", "vms"]
    static let runtimeKeys = ["vm", "default", "allow", "allow-list", "on-timeout", "interpreters"]
    static let allowListKeys = ["file", "digest"]
    static let allowKeys = ["path", "digest"]

    /// Parses UTF-8 bytes; anything that is not UTF-8 is refused rather than repaired.
    public static func parse(bytes: [UInt8], file: String) throws(PolicyError) -> Policy {
        guard bytes.count <= maxPolicyBytes else {
            throw PolicyError([diagnostic(file, "policy is \(bytes.count) bytes; the limit is \(maxPolicyBytes)")])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw PolicyError([diagnostic(file, "policy is not valid UTF-8 text")])
        }
        return try parse(text, file: file)
    }

    public static func parse(_ text: String, file: String) throws(PolicyError) -> Policy {
        guard text.utf8.count <= maxPolicyBytes else {
            throw PolicyError([diagnostic(file, "policy is \(text.utf8.count) bytes; the limit is \(maxPolicyBytes)")])
        }
        guard !text.utf8.contains(0) else {
            throw PolicyError([diagnostic(file, "policy contains a NUL byte")])
        }
        if let problem = lineBreakProblem(text, file: file) { throw PolicyError([problem]) }
        if let problem = YAMLShapeCheck.check(text, file: file) { throw PolicyError([problem]) }
        let root: Node
        // The parser stays alive while the nodes are read: it owns the anchors, which nodes refer
        // to weakly, and `YAMLNodeReader` refuses any node that has one.
        let parser: Parser
        do {
            // No implicit types: every value is read as text and checked by `YAMLNodeReader`, so
            // the default resolver's regular expressions would only slow the composer down.
            parser = try Parser(yaml: text, resolver: .basic)
            guard let composed = try parser.singleRoot() else {
                throw PolicyError([diagnostic(file, "policy is empty")])
            }
            root = composed
        } catch let error as PolicyError {
            throw error
        } catch {
            throw PolicyError([yamlDiagnostic(error, file: file)])
        }
        var reader = YAMLNodeReader(file: file)
        let policy = withExtendedLifetime(parser) { read(root, &reader) }
        let problems = reader.diagnostics.sorted {
            ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column)
        }
        guard problems.isEmpty, let policy else { throw PolicyError(problems) }
        return policy
    }

    private static func read(_ root: Node, _ r: inout YAMLNodeReader) -> Policy? {
        guard let top = r.mapping(root, "the policy", allowed: topKeys, required: ["version", "entities"]) else {
            return nil
        }
        let version = top["version"].flatMap { r.integer($0.value, "version", in: 1...Int(Int32.max)) }
        let mode = top["mode"].map { r.oneOf($0.value, "mode", EnforcementMode.self) } ?? .enforce
        let entities = top["entities"].flatMap { r.sequence($0.value, "entities") }?.compactMap { entity($0, &r) } ?? []
        let users = top["users"].flatMap { r.sequence($0.value, "users") }?.compactMap { user($0, &r) } ?? []
        let runtime = top["runtime"].flatMap { r.sequence($0.value, "runtime") }?.compactMap { ruleSet($0, &r) } ?? []
        guard let version, let mode else { return nil }
        return Policy(
            version: version,
            mode: mode,
            entities: entities,
            users: users,
            runtime: runtime,
            location: r.location(root)
        )
    }

    private static func entity(_ node: Node, _ r: inout YAMLNodeReader) -> EntityDeclaration? {
        guard
            let f = r.mapping(
                node,
                "an entity",
                allowed: entityKeys,
                required: ["name", "parent", "kind", "components"]
            )
        else { return nil }
        let name = f["name"].flatMap { r.name($0.value, "entity name") }
        let parent = f["parent"].flatMap { r.name($0.value, "parent") }
        let kind = f["kind"].flatMap { r.name($0.value, "kind") }.map(EntityKind.init(rawValue:))
        let register = f["register"].map { r.integer($0.value, "register", in: 0...Int(UInt16.max)) }
        let vtpm = f["vtpm"].map { r.boolean($0.value, "vtpm") }
        if let vtpmNode = f["vtpm"], vtpm == true, let kind, kind != .userVM, kind != .serviceVM {
            r.error(
                vtpmNode.value,
                "vtpm: true belongs on a VM (kind user-vm or service-vm), not on a \(kind.rawValue): only a VM has a vTPM"
            )
        }
        let components = f["components"].flatMap { r.sequence($0.value, "components") }?.compactMap {
            component($0, &r)
        }
        guard let name, let parent, let kind, let components, let parentNode = f["parent"] else { return nil }
        if let register, register == nil { return nil }
        if let vtpm, vtpm == nil { return nil }
        return EntityDeclaration(
            name: name,
            parent: parent,
            kind: kind,
            register: register ?? nil,
            components: components,
            location: r.location(f["name"]?.value ?? node),
            parentLocation: r.location(parentNode.value),
            registerLocation: f["register"].map { r.location($0.value) },
            vtpm: (vtpm ?? nil) ?? false
        )
    }

    private static func component(_ node: Node, _ r: inout YAMLNodeReader) -> ComponentDeclaration? {
        guard let f = r.mapping(node, "a component", allowed: componentKeys, required: ["name"]) else { return nil }
        let name = f["name"].flatMap { r.name($0.value, "component name") }
        let digest = f["digest"].map { r.digest($0.value, "digest") }
        let file = f["file"].map { r.absolutePath($0.value, "file") }
        let writable = f["writable"].map { r.boolean($0.value, "writable") }
        guard let name else { return nil }
        if let digest, digest == nil { return nil }
        if let file, file == nil { return nil }
        if let writable, writable == nil { return nil }
        return ComponentDeclaration(
            name: name,
            digest: digest ?? nil,
            file: file ?? nil,
            writable: (writable ?? nil) ?? false,
            location: r.location(f["name"]?.value ?? node)
        )
    }

    private static func user(_ node: Node, _ r: inout YAMLNodeReader) -> UserDeclaration? {
        guard let f = r.mapping(node, "a user", allowed: userKeys, required: ["name"]) else { return nil }
        let name = f["name"].flatMap { r.name($0.value, "user name") }
        let roles = f["roles"].map { r.sequence($0.value, "roles")?.compactMap { r.name($0, "role") } } ?? []
        let vms =
            f["vms"].map { node in
                r.sequence(node.value, "vms")?.compactMap { vm in r.name(vm, "vm").map { ($0, r.location(vm)) } }
            } ?? []
        guard let name, let roles, let vms else { return nil }
        return UserDeclaration(name: name, roles: roles, vms: vms, location: r.location(f["name"]?.value ?? node))
    }

    private static func ruleSet(_ node: Node, _ r: inout YAMLNodeReader) -> RuntimeRuleSet? {
        guard let f = r.mapping(node, "a runtime rule set", allowed: runtimeKeys, required: ["vm"]) else { return nil }
        let vm = f["vm"].flatMap { r.name($0.value, "vm") }
        let decision = f["default"].map { r.oneOf($0.value, "default", ExecDecision.self) } ?? .deny
        let onTimeout = f["on-timeout"].map { r.oneOf($0.value, "on-timeout", ExecDecision.self) }
        let interpreters = f["interpreters"].map { r.oneOf($0.value, "interpreters", InterpreterRule.self) }
        let allow = f["allow"].map { r.sequence($0.value, "allow")?.compactMap { allowed($0, &r) } } ?? []
        var list: AllowListReference?? = .some(nil)
        if let node = f["allow-list"]?.value {
            list =
                r.mapping(node, "an allow-list", allowed: allowListKeys, required: ["file", "digest"]).flatMap {
                    l -> AllowListReference? in
                    let file = l["file"].flatMap { r.string($0.value, "file") }
                    let digest = l["digest"].flatMap { r.digest($0.value, "digest") }
                    guard let file, let digest, !file.isEmpty else { return nil }
                    return AllowListReference(file: file, digest: digest, location: r.location(node))
                }.map { .some($0) } ?? nil
        }
        guard let vm, let decision, let allow, let vmNode = f["vm"], let list else { return nil }
        if let onTimeout, onTimeout == nil { return nil }
        if let interpreters, interpreters == nil { return nil }
        return RuntimeRuleSet(
            vm: vm,
            defaultDecision: decision,
            allow: allow,
            allowList: list,
            onTimeout: onTimeout ?? nil,
            interpreters: interpreters ?? nil,
            location: r.location(node),
            vmLocation: r.location(vmNode.value)
        )
    }

    private static func allowed(_ node: Node, _ r: inout YAMLNodeReader) -> AllowedExecutable? {
        guard let f = r.mapping(node, "an allowed executable", allowed: allowKeys, required: ["path", "digest"]) else {
            return nil
        }
        let path = f["path"].flatMap { r.absolutePath($0.value, "path") }
        let digest = f["digest"].flatMap { r.digest($0.value, "digest") }
        guard let path, let digest else { return nil }
        return AllowedExecutable(path: path, digest: digest, location: r.location(f["path"]?.value ?? node))
    }

    /// YAML also breaks lines at a lone CR and at NEL, LS and PS, where an editor, `grep -n` and a
    /// reviewer do not: a policy with them would be read with other line numbers (and other
    /// lines) than the ones its reviewer saw. Found by fuzzing (a diagnostic at line 150 of a
    /// 46-line file). Lines end in LF or CRLF, nothing else.
    static func lineBreakProblem(_ text: String, file: String) -> PolicyDiagnostic? {
        var line = 1
        var previousWasCR = false
        for scalar in text.unicodeScalars {
            if previousWasCR && scalar != "\n" {
                return PolicyDiagnostic(
                    SourceLocation(file: file, line: line, column: 1),
                    "a carriage return that does not end a line (CRLF): a policy's lines end in LF or CRLF"
                )
            }
            switch scalar {
            case "\n": line += 1
            case "\u{85}", "\u{2028}", "\u{2029}":
                return PolicyDiagnostic(
                    SourceLocation(file: file, line: line, column: 1),
                    "U+\(String(scalar.value, radix: 16, uppercase: true)) breaks lines in YAML but not in editors; a policy's lines end in LF or CRLF"
                )
            default: break
            }
            previousWasCR = scalar == "\r"
        }
        if previousWasCR {
            return PolicyDiagnostic(
                SourceLocation(file: file, line: line, column: 1),
                "a carriage return that does not end a line (CRLF): a policy's lines end in LF or CRLF"
            )
        }
        return nil
    }

    private static func diagnostic(_ file: String, _ message: String) -> PolicyDiagnostic {
        PolicyDiagnostic(SourceLocation(file: file, line: 1, column: 1), message)
    }

    /// libyaml's syntax errors, with their place.
    private static func yamlDiagnostic(_ error: any Error, file: String) -> PolicyDiagnostic {
        func at(_ mark: Mark, _ problem: String) -> PolicyDiagnostic {
            PolicyDiagnostic(
                SourceLocation(file: file, line: mark.line, column: mark.column),
                "YAML syntax: \(problem)"
            )
        }
        switch error as? YamlError {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return at(mark, problem)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return at(context.mark, "duplicate keys \(duplicates.joined(separator: ", "))")
        case .reader(let problem, _, _, _):
            return diagnostic(file, "YAML: \(problem)")
        default:
            return diagnostic(file, "YAML: \(error)")
        }
    }
}
