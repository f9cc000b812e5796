/// An option's `key=value,key=value` argument, read as QEMU 7.2 reads it. Two grammars:
///
/// **QemuOpts** (util/qemu-option.c: -device, -drive, -chardev, -netdev, -object, -name...): an
/// item is `name=value` when a `=` comes before the next `,` (the name taken raw, never
/// unescaped); otherwise, for the first item of an option with an implied key, the whole item is
/// that key's value (`,,` unescaped, `=` allowed); otherwise a flag (`noX` is X=off, `X` is
/// X=on). A value runs to a single `,`; `,,` is a comma.
///
/// **keyval** (util/keyval.c: -machine, -blockdev, -smp, -boot, -audiodev, -display...): the
/// same, but the implied value stops at the first `=` or `,` with no unescaping, and there are
/// no flags. Keys may be dotted (`file.filename`).
///
/// QEMU keeps the **last** value of a repeated key (and the first `id=`): the gate refuses any
/// key given twice instead of guessing which one QEMU will use.
public struct QemuOpts: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public let key: String
        public let value: String
    }

    public let items: [Item]

    public enum Grammar: Sendable {
        case qemuOpts
        case keyval
    }

    /// At most this many items in one argument.
    public static let maxItems = 256

    /// `repeatable`: keys whose every occurrence QEMU takes (list members, such as netdev user's
    /// `hostfwd`), which may be given more than once.
    public init(
        parsing text: String,
        option: String,
        implied: String?,
        grammar: Grammar,
        repeatable: Set<String> = []
    ) throws(HypervisorError) {
        var items: [Item] = []
        var rest = Substring(text)
        var first = true
        while !rest.isEmpty || first {
            guard items.count < Self.maxItems else {
                throw HypervisorError("\(option): more than \(Self.maxItems) items")
            }
            let nameEnd = rest.firstIndex { $0 == "=" || $0 == "," } ?? rest.endIndex
            if nameEnd < rest.endIndex, rest[nameEnd] == "=" {
                let key = String(rest[..<nameEnd])
                let (value, after) = Self.value(rest[rest.index(after: nameEnd)...])
                items.append(Item(key: key, value: value))
                rest = after
            } else if first, let implied {
                switch grammar {
                case .qemuOpts:
                    let (value, after) = Self.value(rest)
                    items.append(Item(key: implied, value: value))
                    rest = after
                case .keyval:
                    items.append(Item(key: implied, value: String(rest[..<nameEnd])))
                    rest = nameEnd < rest.endIndex ? rest[rest.index(after: nameEnd)...] : rest[nameEnd...]
                }
            } else {
                let word = String(rest[..<nameEnd])
                rest = nameEnd < rest.endIndex ? rest[rest.index(after: nameEnd)...] : rest[nameEnd...]
                if word.isEmpty && rest.isEmpty && !first { break }  // a trailing comma
                guard grammar == .qemuOpts else {
                    throw HypervisorError("\(option): '\(word)' has no value (keyval takes key=value only)")
                }
                if word.hasPrefix("no") {
                    items.append(Item(key: String(word.dropFirst(2)), value: "off"))
                } else {
                    items.append(Item(key: word, value: "on"))
                }
            }
            first = false
        }
        var seen = Set<String>()
        for item in items where !repeatable.contains(item.key) && !seen.insert(item.key).inserted {
            throw HypervisorError(
                "\(option): '\(item.key)' is given twice (QEMU would take one of them silently); give it once"
            )
        }
        self.items = items
    }

    /// A value up to a single comma, `,,` read as a comma; and what follows the comma.
    static func value(_ text: Substring) -> (String, Substring) {
        var value = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "," {
                let next = text.index(after: index)
                if next < text.endIndex, text[next] == "," {
                    value.append(",")
                    index = text.index(after: next)
                    continue
                }
                return (value, text[next...])
            }
            value.append(character)
            index = text.index(after: index)
        }
        return (value, text[text.endIndex...])
    }

    public subscript(key: String) -> String? {
        items.first { $0.key == key }?.value
    }

    public var keys: [String] { items.map(\.key) }
}
