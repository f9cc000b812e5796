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
        discussion:
            "Images a disk is layered on become entities of their own (deepest first, the deepest a child of --parent); the VM's entity holds its loader, NVRAM template, kernel, initrd, cmdline and disks. Review, then sign the policy."
    )

    @Argument(help: "The domain's XML (virsh dumpxml NAME).")
    var domain: String
    @Option(help: "The entity the domain's deepest image (or the VM itself) is a child of.")
    var parent = "vmm"
    @Flag(help: "The domain is a user VM: starting it needs a logged-in user the policy names.")
    var userVM = false
    @Option(
        name: .shortAndLong,
        help: "A policy file to add the entities to (refused if one is there already); default: print them."
    )
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
        let entities = try Self.entities(mapping, parent: parent, kind: userVM ? "user-vm" : "service-vm")
        if let output {
            let existing = String(decoding: try PolicyFiles.read(output), as: UTF8.self)
            let (merged, added, reused) = try Self.merge(entities, into: existing, file: output)
            try PolicyFiles.write(Array(merged.utf8), to: output)
            let kept =
                reused.isEmpty
                ? "" : " (\(reused.joined(separator: ", ")) already there, with the same digest and parent: reused)"
            FileHandleOutput.standardError(
                "added \(added.joined(separator: ", ")) to \(output)\(kept); review it, then sign it"
            )
        } else {
            print(entities.map(\.text).joined(), terminator: "")
        }
        if xml.entity == nil && mapping.vm != xml.name {
            FileHandleOutput.standardError("note: the domain is named '\(xml.name)'")
        }
        FileHandleOutput.standardError(
            """
            add to the domain (virsh edit \(xml.name)), unless its name is the entity's:
              <metadata><ukey:entity xmlns:ukey="\(DomainXML.namespace)">\(mapping.vm)</ukey:entity></metadata>
            """
        )
    }

    /// One entity to enrol, as YAML list items under `entities:`.
    struct Enrolled {
        let name: String
        let parent: String
        /// A parent image's (a backing layer): its `image` digest. nil for the VM itself.
        let image: UkeyCore.Digest?
        let text: String
    }

    /// The entities, with digests from the files as they are: the backing layers (deepest first)
    /// as base images, then the VM.
    static func entities(_ mapping: DomainMapping, parent: String, kind: String) throws -> [Enrolled] {
        var entities: [Enrolled] = []
        var vmParent = parent
        for step in mapping.steps where step.entity != mapping.vm {
            let (text, digest) = try component(step)
            let parentName = step.imageParent ?? parent
            entities.append(
                Enrolled(
                    name: step.entity,
                    parent: parentName,
                    image: digest,
                    text: "  - name: \(step.entity)\n    parent: \(parentName)\n    kind: base-image\n    components:\n"
                        + text
                )
            )
            vmParent = step.entity
        }
        // A domain whose TPM is ukeyd's vTPM for it: the entity says so (the gate then has ukeyd start it).
        let vtpm = mapping.vtpm ? "    vtpm: true\n" : ""
        var text = "  - name: \(mapping.vm)\n    parent: \(vmParent)\n    kind: \(kind)\n\(vtpm)    components:\n"
        for step in mapping.steps where step.entity == mapping.vm { text += try component(step).text }
        entities.append(Enrolled(name: mapping.vm, parent: vmParent, image: nil, text: text))
        return entities
    }

    static func component(_ step: DomainMapping.Step) throws -> (text: String, digest: UkeyCore.Digest) {
        switch step.source {
        case .file(let path):
            let digest: UkeyCore.Digest
            do {
                digest = try ProgressLine.around(hashing: path) { progress in
                    try FileDigester.digest(ofFileAt: path, progress: progress)
                }
            } catch {
                throw InputError("cannot hash \(error)")
            }
            // The VM's own disk and NVRAM: their digest is the first state; ukeyd seals the rest.
            let writable = step.writable ? "        writable: true\n" : ""
            return (
                "      - name: \(step.component)\n        file: \(path)\n        digest: \(digest)\n" + writable, digest
            )
        case .text(let text):
            let digest = UkeyCore.Digest.of(Array(text.utf8))
            return ("      - name: \(step.component)\n        digest: \(digest)\n", digest)
        }
    }

    /// `entities` added at the end of the policy's `entities:` list; the result must parse. A
    /// parent image already in the policy (a second VM over the same parent OS) is reused when
    /// its digest and its parent agree, and refused, naming both, when they do not; the VM
    /// itself must be new.
    static func merge(
        _ entities: [Enrolled],
        into policy: String,
        file: String
    ) throws -> (text: String, added: [String], reused: [String]) {
        let parsed: Policy
        do {
            parsed = try PolicyParser.parse(policy, file: file)
        } catch {
            throw InputError("\(file) does not parse: \(error)")
        }
        var added: [Enrolled] = []
        var reused: [String] = []
        for entity in entities {
            guard let present = parsed.entities.first(where: { $0.name == entity.name }) else {
                added.append(entity)
                continue
            }
            guard let image = entity.image else {
                throw InputError("\(file) already has an entity '\(entity.name)'; remove it first to enrol it again")
            }
            let enrolled = present.components.first { $0.name == "image" }?.digest
            guard enrolled == image else {
                throw InputError(
                    "\(file) already has a parent image '\(entity.name)' with digest \(enrolled.map { "\($0)" } ?? "none"), but the domain's \(entity.name) hashes to \(image) now: the same name, another image; enrol it under another name or re-enrol the parent"
                )
            }
            guard present.parent == entity.parent else {
                throw InputError(
                    "\(file) already has a parent image '\(entity.name)' loaded by '\(present.parent)', but the domain layers it on '\(entity.parent)'; refused"
                )
            }
            reused.append(entity.name)
        }
        let text = added.map(\.text).joined()
        var lines = policy.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.hasPrefix("entities:") }) else {
            throw InputError("\(file) has no top-level 'entities:' list")
        }
        // The list ends at the next top-level key (or the end of the file).
        let end =
            lines[(start + 1)...].firstIndex { line in
                guard let first = line.first else { return false }
                return first != " " && first != "#" && first != "-"
            } ?? lines.count
        var insertAt = end
        while insertAt > start + 1, lines[insertAt - 1].trimmingCharacters(in: .whitespaces).isEmpty { insertAt -= 1 }
        lines.insert(
            contentsOf: text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init),
            at: insertAt
        )
        let merged = lines.joined(separator: "\n")
        do {
            _ = try PolicyParser.parse(merged, file: file)
        } catch {
            throw InputError("the policy with the domain's entities does not parse (nothing written): \(error)")
        }
        return (merged, added.map(\.name), reused)
    }
}
