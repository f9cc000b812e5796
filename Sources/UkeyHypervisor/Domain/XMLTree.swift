import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An XML document as a tree of elements, read with bounds (size, depth, element count, text),
/// without a DOCTYPE (so without entities). Names carry their namespace: an element of ukey's
/// namespace is `ukey:NAME`, of libvirt's QEMU namespace `qemu:NAME`, of any other namespace
/// `{URI}NAME`, so no prefix a document chooses can pass one for another.
struct XMLTree: Sendable {
    struct Element: Sendable {
        var name: String
        var attributes: [String: String]
        /// The element's own text, as written (not trimmed).
        var text: String
        var children: [Element]

        func child(_ name: String) -> Element? { children.first { $0.name == name } }
        func all(_ name: String) -> [Element] { children.filter { $0.name == name } }
        var trimmedText: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    static let maxBytes = 1 << 20
    static let maxDepth = 64
    static let maxElements = 20_000
    static let maxText = 65_536
    static let namespaces = [
        "https://ukey.dev/libvirt/1": "ukey", "http://libvirt.org/schemas/domain/qemu/1.0": "qemu",
    ]

    let root: Element

    init(parsing bytes: [UInt8]) throws(HypervisorError) {
        guard !bytes.isEmpty else { throw HypervisorError("the domain XML is empty") }
        guard bytes.count <= Self.maxBytes else {
            throw HypervisorError("the domain XML is \(bytes.count) bytes; at most \(Self.maxBytes)")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw HypervisorError("the domain XML is not UTF-8")
        }
        if bytes.firstRange(of: Array("<!DOCTYPE".utf8)) != nil || bytes.firstRange(of: Array("<!ENTITY".utf8)) != nil {
            throw HypervisorError("the domain XML has a DOCTYPE or an entity declaration, which libvirt never writes")
        }
        let builder = Builder()
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        parser.delegate = builder
        let ok = parser.parse()
        if let problem = builder.problem { throw HypervisorError("the domain XML: \(problem)") }
        guard ok, let root = builder.root else {
            throw HypervisorError(
                "the domain XML is malformed: \(parser.parserError.map { "\($0.localizedDescription)" } ?? "parse error") (line \(parser.lineNumber))"
            )
        }
        self.root = root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [Element] = []
        var root: Element?
        var problem: String?
        var count = 0

        func fail(_ parser: XMLParser, _ what: String) {
            if problem == nil { problem = what }
            parser.abortParsing()
        }

        func parser(
            _ parser: XMLParser,
            didStartElement element: String,
            namespaceURI: String?,
            qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            count += 1
            guard count <= XMLTree.maxElements else { return fail(parser, "more than \(XMLTree.maxElements) elements") }
            guard stack.count < XMLTree.maxDepth else {
                return fail(parser, "elements nest deeper than \(XMLTree.maxDepth)")
            }
            let name: String
            switch namespaceURI {
            case nil, ""?: name = element
            case let uri?: name = XMLTree.namespaces[uri].map { "\($0):\(element)" } ?? "{\(uri)}\(element)"
            }
            // Namespaced attributes are dropped: libvirt reads none on the elements the hook reads.
            stack.append(Element(name: name, attributes: attributes, text: "", children: []))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
            if stack[stack.count - 1].text.utf8.count > XMLTree.maxText {
                fail(parser, "an element's text is longer than 64 KiB")
            }
        }

        func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
            guard let done = stack.popLast() else { return }
            if stack.isEmpty {
                root = done
            } else {
                stack[stack.count - 1].children.append(done)
            }
        }

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
            if problem == nil { problem = "malformed (line \(parser.lineNumber)): \(parseError.localizedDescription)" }
        }
    }
}
