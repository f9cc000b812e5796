import ArgumentParser
import Crypto
import Foundation
import UkeyAPI
import UkeyAudit
import UkeyClient
import UkeyToken
import UkeyVarlink
import X509

/// `ukeyctl audit show|verify`: read the audit log through ukeyd, or check a copy of it offline.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit log, or verify it (offline with --log and --cert).",
        subcommands: [AuditShow.self, AuditVerify.self]
    )
}

struct AuditShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print audit records; --follow keeps printing new ones."
    )
    @OptionGroup var daemon: DaemonOptions
    @Option(help: "Only records of this type (measure, login, exec, policy-load, mode, checkpoint, ...).") var type:
        String?
    @Option(help: "Start at this record number.") var since = 1
    @Option(help: "At most this many records (without --follow).") var limit = 1000
    @Flag(help: "Keep printing records as they are written, until interrupted.") var follow = false

    func run() throws {
        guard follow else {
            let request = Audit.Query.Request(since: since, limit: min(max(limit, 1), 1000), type: type)
            let reply = try daemon.call(Audit.Query.self, request)
            for record in reply.records { print(line(.object(record))) }
            return
        }
        let connection: VarlinkConnection
        do {
            connection = try VarlinkConnection(path: daemon.socketPath, timeout: 0)
            try connection.send(VarlinkCall(Audit.Query.self, .init(since: since, type: type), more: true))
        } catch {
            FileHandleOutput.standardError("ukeyctl: \(error)")
            throw ExitCode.unreachable
        }
        while true {
            let reply: VarlinkReply
            do {
                reply = try connection.receive()
            } catch {
                FileHandleOutput.standardError("ukeyctl: the stream ended: \(error)")
                throw ExitCode.unreachable
            }
            let page: Audit.Query.Reply
            do {
                page = try reply.decoded(as: Audit.Query.self)
            } catch {
                FileHandleOutput.standardError("ukeyctl: \(DaemonOptions.explain(error))")
                throw ExitCode.checkFailed
            }
            for record in page.records { print(line(.object(record))) }
            fflush(nil)  // all streams: a pipe to `grep` sees records as they come
            if !reply.continues { return }
        }
    }

    /// One record per line: `seq time type [role uid pid] key=value ...`, or its JSON with --json.
    func line(_ record: JSONValue) -> String {
        if daemon.json { return DaemonOptions.compactJSON(record) }
        let subject = record["subject"]?.objectValue ?? [:]
        let fields = subject.keys.sorted().map { "\($0)=\(subject[$0]!.text)" }.joined(separator: " ")
        let actor =
            record["actor"].map {
                "[\($0["role"]?.text ?? "-") uid \($0["uid"]?.text ?? "-") pid \($0["pid"]?.text ?? "-")]"
            } ?? "[-]"
        return
            "\(record["seq"]?.text ?? "?")\t\(record["time"]?.text ?? "")\t\(record["type"]?.text ?? "")\t\(actor) \(fields)"
    }
}

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract:
            "Verify the audit log and its archives: through ukeyd, or offline with --log and --cert AUDIT.pem (no daemon needed).",
        discussion: """
            Offline, every record's hash, number and link and every checkpoint's signature are checked; \
            records cut off after the last checkpoint can only be detected by ukeyd, which keeps the \
            last checkpoint's position sealed. Both walk the chain of files back from the current one: \
            each archive (audit-FIRST-LAST.log) it continues must be there and end where the next file \
            says, unless a later record says retention removed it. --log takes the log's directory, \
            its current file (the archives beside it are read too), or the files themselves (repeat \
            --log; archives keep their names). Get AUDIT.pem with 'ukeyctl cert audit'. Exit 0 verified, 1 not.
            """
    )
    @OptionGroup var daemon: DaemonOptions
    @Option(help: "The log's directory (STATE), its current file (STATE/audit.log), or, repeated, each file of a copy.")
    var log: [String] = []
    @Option(
        help: "The audit key's certificate (PEM), followed by its issuer (the token-keys sub-CA) to check the chain."
    ) var cert: String?
    @Option(help: "The token's root CA (PEM): also check that the audit certificate chains to it.") var rootCA: String?
    @Option(help: "The SM2 distinguishing ID the token signed with. Default: GM/T 0009's 1234567812345678.") var sm2Id:
        String = SM2Identifier.defaultText

    func run() throws {
        let reply: Audit.Verify.Reply
        switch (log.isEmpty ? nil : log, cert) {
        case (nil, nil):
            reply = try daemon.call(Audit.Verify.self)
        case (let log?, let cert?):
            let pem = String(decoding: try PolicyFiles.read(cert), as: UTF8.self)
            let rootPEM = try rootCA.map { String(decoding: try PolicyFiles.read($0), as: UTF8.self) }
            do {
                try CertificateBundle.validate(pem, what: "certificate in \(cert)")
                try rootPEM.map { pem throws(TokenError) in try CertificateBundle.validate(pem, what: "root CA") }
            } catch {
                throw InputError(error.reason)
            }
            let sm2ID: [UInt8]
            do {
                sm2ID = try SM2Identifier.bytes(sm2Id)
            } catch {
                throw InputError(error.reason)
            }
            let key: VerificationKey
            do {
                key = try CertificateBundle.verificationKey(pem, for: .audit, rootCAPEM: rootPEM, sm2ID: sm2ID)
            } catch {
                // A certificate that is not the token's audit key's cannot vouch for the log.
                print("\(log): NOT verified: \(error.reason)")
                throw ExitCode.checkFailed
            }
            let (current, archives) = try Self.files(log)
            let result: AuditChainVerification
            do {
                result = try AuditChainVerifier.verify(
                    current: current,
                    archives: archives,
                    checkpointKey: CheckpointKey(algorithm: key.algorithm) { key.isValidSignature($0, for: $1) }
                )
            } catch {
                throw InputError("\(error)")
            }
            reply = Audit.Verify.Reply(result)
        default:
            throw ValidationError("give both --log and --cert for an offline check, or neither to ask ukeyd")
        }
        let ok = reply.ok
        if !daemon.printJSON(reply) {
            let what = log.first ?? "the audit log"
            let files = max(reply.files.count, 1)
            if ok {
                let tail = reply.unsignedTail
                print(
                    "\(what): \(Style.green.apply("verified")): \(reply.count) records in \(files) file(s), \(reply.checkpoints) signed checkpoint(s)"
                        + (tail > 0 ? ", \(tail) after the last checkpoint (chained, not yet signed)" : "")
                )
            } else {
                print(
                    "\(what): \(Style.red.apply("FAILED")) at record \(reply.firstBad.map(String.init) ?? "?"): \(reply.reason ?? "")"
                )
            }
            for removed in reply.removedByRetention {
                print(
                    "  \(removed.archive): removed by retention (record \(removed.recordedAt) says so); its chain ended at record \(removed.upto), hash \(removed.head)"
                )
            }
        }
        if !ok { throw ExitCode.checkFailed }
    }

    /// The current file and the archives at hand, from --log: a directory (its audit.log and the
    /// archives in it), one file (and the archives beside it), or every file of a copy (the one
    /// whose records come last is the current one; the others must keep their archive names).
    static func files(_ given: [String]) throws -> (current: String, archives: [String: String]) {
        var isDirectory: ObjCBool = false
        if given.count == 1, FileManager.default.fileExists(atPath: given[0], isDirectory: &isDirectory) {
            let current = isDirectory.boolValue ? given[0] + "/audit.log" : given[0]
            return (current, AuditChainVerifier.archives(besideLog: current))
        }
        guard given.count > 1 else { throw InputError("\(given.first ?? "--log"): no such file or directory") }
        var byFirst: [(first: UInt64, path: String)] = []
        for path in given {
            guard let first = AuditVerifier.firstSeq(path) else {
                throw InputError("\(path): not an audit log (its first record cannot be read)")
            }
            byFirst.append((first, path))
        }
        byFirst.sort { $0.first < $1.first }
        let current = byFirst.removeLast().path
        var archives: [String: String] = [:]
        for (_, path) in byFirst {
            let name = (path as NSString).lastPathComponent
            guard AuditRotation.isArchiveName(name) else {
                throw InputError(
                    "\(path) is not named as an archive (audit-FIRST-LAST.log), and the chain finds archives by their names"
                )
            }
            archives[name] = path
        }
        return (current, archives)
    }
}
