// libyaml's event stream, from the very copy of libyaml that Yams composes with. Yams does not
// list its C module as a product, but the module is visible to every target that depends on Yams;
// this file is the only one that uses it, and only to read events.
import CYaml

/// Refuses, from libyaml's events and before Yams builds a tree, the YAML a policy never needs
/// and that makes building the tree expensive. Yams checks each mapping for duplicate keys by
/// hashing every key in full, so:
/// - a key that is a list or a mapping is hashed again at every level it is nested in (the policy
///   fuzzer found 948 bytes of nested `? - - ?` keys that took 15 s to refuse);
/// - an alias as a key is hashed as its whole expansion (eight anchored lists of ten aliases each,
///   300 bytes, stand for 10^8 scalars: a minute and more, the "billion laughs" through a hash).
/// Both are refused here, as is nesting deeper than a policy ever goes, so what Yams composes is
/// linear in the text. Syntax errors are left to Yams, which reports them in its own words.
enum YAMLShapeCheck {
    /// A policy nests five deep (policy, entities, entity, components, component); this leaves
    /// room and still bounds the composer's recursion far below libyaml's own limit of 1,000.
    static let maxDepth = 16

    private enum Frame {
        case sequence
        case mapping(nextIsKey: Bool)
    }

    static func check(_ text: String, file: String) -> PolicyDiagnostic? {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            return PolicyDiagnostic(
                SourceLocation(file: file, line: 1, column: 1),
                "YAML: the parser could not start (out of memory)"
            )
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var stack: [Frame] = []
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let at = SourceLocation(
                    file: file,
                    line: event.start_mark.line + 1,
                    column: event.start_mark.column + 1
                )
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_ALIAS_EVENT:
                    return PolicyDiagnostic(at, anchorsRefused)
                case YAML_SCALAR_EVENT:
                    if event.data.scalar.anchor != nil { return PolicyDiagnostic(at, anchorsRefused) }
                    advance(&stack)
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let isMapping = event.type == YAML_MAPPING_START_EVENT
                    let anchor = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
                    if anchor != nil { return PolicyDiagnostic(at, anchorsRefused) }
                    if case .mapping(nextIsKey: true)? = stack.last {
                        return PolicyDiagnostic(at, "keys must be plain words, not \(isMapping ? "mappings" : "lists")")
                    }
                    advance(&stack)
                    guard stack.count < maxDepth else {
                        return PolicyDiagnostic(at, "nested more than \(maxDepth) deep; a policy needs five levels")
                    }
                    stack.append(isMapping ? .mapping(nextIsKey: true) : .sequence)
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    _ = stack.popLast()
                default:
                    continue
                }
            }
        }
    }

    static let anchorsRefused = "anchors and aliases (& and *) are not allowed in a policy"

    /// One node taken by the innermost collection: a mapping alternates key and value.
    private static func advance(_ stack: inout [Frame]) {
        if case .mapping(let nextIsKey)? = stack.last {
            stack[stack.count - 1] = .mapping(nextIsKey: !nextIsKey)
        }
    }
}
