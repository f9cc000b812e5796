import UkeyCore
import Yams

/// `ukeyctl policy enroll`: fills each component's `digest` from its `file`, while the system is
/// known good (the paper computes H "in the known-good state"). It edits the text in place, so
/// comments, order and layout survive and the diff a reviewer signs is only the digests.
public enum PolicyEnroller {
    /// One digest written into the text.
    public struct Change: Sendable, Hashable {
        public let entity: String
        public let component: String
        public let file: String
        public let old: Digest?
        public let new: Digest
    }

    /// Returns the new text and what changed. `digestOf` hashes a component's file (injected so
    /// the caller picks the root directory and algorithm, and tests need no disk).
    public static func enroll(
        _ text: String,
        file: String,
        digestOf: (String) throws -> Digest
    ) throws -> (text: String, changes: [Change]) {
        let policy = try PolicyParser.parse(text, file: file)
        guard let root = try Yams.compose(yaml: text), case .mapping(let top) = root,
            let entitiesNode = top.first(where: { $0.key.string == "entities" })?.value,
            case .sequence(let entityNodes) = entitiesNode
        else { return (text, []) }

        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var edits: [(line: Int, insert: Bool, text: String)] = []
        var changes: [Change] = []
        for (entity, entityNode) in zip(policy.entities, entityNodes) {
            guard case .mapping(let entityMap) = entityNode,
                case .sequence(let componentNodes)? = entityMap.first(where: { $0.key.string == "components" })?.value
            else { continue }
            for (component, componentNode) in zip(entity.components, componentNodes) {
                guard let path = component.file, case .mapping(let map) = componentNode else { continue }
                let new = try digestOf(path)
                changes.append(
                    Change(entity: entity.name, component: component.name, file: path, old: component.digest, new: new)
                )
                // A flow mapping (`{name: k, file: /k}`) starts with a brace; its keys share a line.
                let mapLine = map.mark.map { Array(lines[$0.line - 1]) } ?? []
                let mapColumn = (map.mark?.column ?? 1) - 1
                guard mapColumn >= mapLine.count || mapLine[mapColumn] != "{" else {
                    throw PolicyError([
                        PolicyDiagnostic(
                            component.location,
                            "enroll needs components in block style (one key per line)"
                        )
                    ])
                }
                if let digestValue = map.first(where: { $0.key.string == "digest" })?.value, let mark = digestValue.mark
                {
                    edits.append(
                        (
                            mark.line - 1, false,
                            replaceToken(in: lines[mark.line - 1], at: mark.column - 1, with: new.description)
                        )
                    )
                } else if let fileKey = map.first(where: { $0.key.string == "file" })?.key, let mark = fileKey.mark {
                    let indent = String(repeating: " ", count: mark.column - 1)
                    edits.append((mark.line - 1, true, "\(indent)digest: \(new)"))
                }
            }
        }
        // Apply from the bottom so earlier line numbers stay valid.
        for edit in edits.sorted(by: { $0.line > $1.line }) {
            if edit.insert {
                lines.insert(edit.text, at: edit.line + 1)
            } else {
                lines[edit.line] = edit.text
            }
        }
        return (lines.joined(separator: "\n"), changes)
    }

    /// Replaces the scalar token that starts at `column` (plain or quoted), keeping what follows it
    /// on the line (a trailing comment).
    private static func replaceToken(in line: String, at column: Int, with value: String) -> String {
        let chars = Array(line)
        guard column < chars.count else { return line + value }
        var end = column
        if chars[column] == "\"" || chars[column] == "'" {
            end = column + 1
            while end < chars.count && chars[end] != chars[column] { end += 1 }
            end = min(end + 1, chars.count)
        } else {
            while end < chars.count && chars[end] != " " && chars[end] != "\t" { end += 1 }
        }
        return String(chars[..<column]) + value + String(chars[end...])
    }
}
