import ArgumentParser
import Foundation
import UkeyCore
import UkeyHypervisor
import UkeyPolicy

/// `ukeyctl policy enroll-domain DOMAIN.xml`: the policy entities the libvirt hook will ask about
/// for a domain, with digests computed now from its files (run it on a known-good host), through
/// the hook's own mapping (`DomainMapping`), and the metadata element to add to the domain.
struct PolicyEnrollDomain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll-domain",
        abstract: "Print (or add to a policy) the entities and digests the libvirt hook will ask about for a domain.",
        discussion: "Images a disk is layered on become entities of their own (deepest first, the deepest a child of --parent); the VM's entity holds its loader, NVRAM template, kernel, initrd, cmdline and disks. Review, then sign the policy."
    )

    @Argument(help: "The domain's XML (virsh dumpxml NAME).")
    var domain: String
    @Option(help: "The entity the domain's deepest image (or the VM itself) is a child of.")
    var parent = "vmm"
    @Flag(help: "The domain is a user VM: starting it needs a logged-in user the policy names.")
    var userVM = false
    @Option(name: .shortAndLong, help: "A policy file to add the entities to (refused if one is there already); default: print them.")
    var output: String?

    func run() throws {
        let xml: DomainXML
        let mapping: DomainMapping
        do {
            xml = try DomainXML(parsing: try PolicyFiles.read(domain))
            mapping = try DomainMapping(xml)
        } catch let error as HypervisorError {
            throw InputError("\(domain): \(error)")
        }
        let yaml = try Self.entities(mapping, parent: parent, kind: userVM ? "user-vm" : "service-vm")
        if let output {
            let existing = String(decoding: try PolicyFiles.read(output), as: UTF8.self)
            let merged = try Self.merge(yaml.text, names: yaml.names, into: existing, file: output)
            try PolicyFiles.write(Array(merged.utf8), to: output)
            FileHandleOutput.standardError("added \(yaml.names.joined(separator: ", ")) to \(output); review it, then sign it")
        } else {
            print(yaml.text, terminator: "")
        }
        if xml.entity == nil && mapping.vm != xml.name {
            FileHandleOutput.standardError("note: the domain is named '\(xml.name)'")
        }
        FileHandleOutput.standardError("""
            add to the domain (virsh edit \(xml.name)), unless its name is the entity's:
              <metadata><ukey:entity xmlns:ukey="\(DomainXML.namespace)">\(mapping.vm)</ukey:entity></metadata>
            """)
    }

    /// The entities as YAML list items under `entities:`, with digests from the files as they are.
    static func entities(_ mapping: DomainMapping, parent: String, kind: String) throws -> (text: String, names: [String]) {
        var text = ""
        var names: [String] = []
        var vmParent = parent
        for step in mapping.steps where step.entity != mapping.vm {
            names.append(step.entity)
            text += "  - name: \(step.entity)\n    parent: \(step.imageParent ?? parent)\n    kind: base-image\n    components:\n"
            text += try component(step)
            vmParent = step.entity
        }
        names.append(mapping.vm)
        text += "  - name: \(mapping.vm)\n    parent: \(vmParent)\n    kind: \(kind)\n    components:\n"
        for step in mapping.steps where step.entity == mapping.vm { text += try component(step) }
        return (text, names)
    }

    static func component(_ step: DomainMapping.Step) throws -> String {
        switch step.source {
        case .file(let path):
            let digest: UkeyCore.Digest
            do {
                digest = try FileDigester.digest(ofFileAt: path)
            } catch {
                throw InputError("cannot hash \(error)")
            }
            return "      - name: \(step.component)\n        file: \(path)\n        digest: \(digest)\n"
        case .text(let text):
            return "      - name: \(step.component)\n        digest: \(UkeyCore.Digest.of(Array(text.utf8)))\n"
        }
    }

    /// `entities` added at the end of the policy's `entities:` list; the result must parse.
    static func merge(_ entities: String, names: [String], into policy: String, file: String) throws -> String {
        let parsed: Policy
        do {
            parsed = try PolicyParser.parse(policy, file: file)
        } catch {
            throw InputError("\(file) does not parse: \(error)")
        }
        let present = Set(parsed.entities.map(\.name))
        if let clash = names.first(where: present.contains) {
            throw InputError("\(file) already has an entity '\(clash)'; remove it first to enrol it again")
        }
        var lines = policy.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasPrefix("entities:") }) else {
            throw InputError("\(file) has no top-level 'entities:' list")
        }
        // The list ends at the next top-level key (or the end of the file).
        let end = lines[(start + 1)...].firstIndex { line in
            guard let first = line.first else { return false }
            return first != " " && first != "#" && first != "-"
        } ?? lines.count
        var insertAt = end
        while insertAt > start + 1, lines[insertAt - 1].trimmingCharacters(in: .whitespaces).isEmpty { insertAt -= 1 }
        lines.insert(contentsOf: entities.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init), at: insertAt)
        let merged = lines.joined(separator: "\n")
        do {
            _ = try PolicyParser.parse(merged, file: file)
        } catch {
            throw InputError("the policy with the domain's entities does not parse (nothing written): \(error)")
        }
        return merged
    }
}
