import Foundation
import Glibc

/// Rotation (`AuditRotation`) and retention (`AuditRetention`), as the writer performs them.
extension AuditWriter {
    /// Closes the current file with a signed checkpoint, archives it as
    /// `audit-<first>-<last>.log`, and continues in a new `audit.log` whose first record
    /// (`rotated`) names the archive and chains to its last record, followed by a checkpoint.
    /// The new file is complete before either rename, so a crash leaves the old file current,
    /// or both files in place (`AuditRotation.finishInterrupted` completes the second rename).
    /// If the token cannot sign now, the rotation waits for a later batch.
    func rotate() async throws(AuditError) {
        let path = configuration.path
        let closing = await signed(state.closingBatch())
        guard !closing.lines.isEmpty else { return }
        try configuration.fileIO.append(closing.bytes, to: file.fd, file: path)
        let closed = state.written(closing)
        configuration.durable?(closing.lines)
        if let sealed = closed.sealed { await seal(sealed) }

        let (opening, archive) = state.newFileBatch(now: Date())
        let batch = await signed(opening)
        guard batch.sealed != nil else {
            state.rotationPutOff()
            return
        }
        let nextPath = path + AuditRotation.nextSuffix
        unlink(nextPath)
        let newFD = open(nextPath, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard newFD >= 0 else {
            throw AuditError(.io, "cannot create \(nextPath): \(String(cString: strerror(errno)))")
        }
        do throws(AuditError) {
            try configuration.fileIO.append(batch.bytes, to: newFD, file: nextPath)
        } catch {
            Glibc.close(newFD)
            throw error
        }
        let directory = (path as NSString).deletingLastPathComponent
        guard rename(path, directory + "/" + archive) == 0, rename(nextPath, path) == 0 else {
            Glibc.close(newFD)
            throw AuditError(.io, "cannot rotate the audit log \(path): \(String(cString: strerror(errno)))")
        }
        AuditLog.syncDirectory(of: path)
        configuration.durable?(batch.lines)
        let written = state.rotated(batch, now: Date())
        file.replace(with: newFD, firstSeq: state.position.fileFirstSeq)
        if let sealed = written.sealed { await seal(sealed) }
        if let tailSeal, let tail = written.tail { try tailSeal.write(tail) }
        try await applyRetention()
    }

    /// After a rotation: the archives past `[audit] keep-archives` or `max-total`, oldest first,
    /// each recorded (`archive-removed`, durable with a checkpoint) before it is unlinked. An
    /// archive whose last record the file after it does not name is kept, and so is every newer one.
    private func applyRetention() async throws(AuditError) {
        let retention = configuration.retention
        guard retention.limits else { return }
        let archives = AuditRetention.archives(besideLog: configuration.path)
        let directory = (configuration.path as NSString).deletingLastPathComponent
        var entries: [(entry: AuditEntry, time: Date)] = []
        var removed: [AuditRetention.Archive] = []
        for archive in retention.removals(of: archives, currentBytes: state.position.fileSize) {
            guard let head = AuditRetention.finalHash(of: archive, archives: archives, currentPath: configuration.path)
            else {
                problems(
                    "audit retention keeps \(archive.name) and the archives after it: the file after it does not name its last record"
                )
                break
            }
            entries.append((retention.removalEntry(archive, head: head, directory: directory), Date()))
            removed.append(archive)
        }
        guard !entries.isEmpty else { return }
        _ = try await commit(state.ownBatch(entries, now: Date()))
        for archive in removed { unlink(directory + "/" + archive.name) }
        AuditLog.syncDirectory(of: configuration.path)
    }
}
