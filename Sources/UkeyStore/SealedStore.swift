import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// The sealed state store: named records, encrypted and authenticated together (AES-256-GCM) under
/// a random store key that a `StoreKeyProtector` keeps, written as one file with `AtomicFile`.
///
/// One file rather than one per record: a record cannot be rolled back or swapped on its own
/// (say, an old PIN retry counter), since every write seals all records with a new generation.
/// Rolling back the whole file to an older copy is still possible for whoever can write the state
/// directory; only a hardware monotonic counter stops that (the tpm backend).
///
/// Records are small (users, keys, counters, the policy's digest and version); large data such as
/// the policy text itself lives beside the store, bound to it by its digest.
public struct SealedStore: Sendable {
    public static let fileName = "store.sealed"
    /// Far above what ukey stores (kilobytes), far below what could exhaust memory.
    public static let maxFileBytes = 16 << 20
    public static let maxRecordName = 128

    public let directory: String
    public var path: String { "\(directory)/\(Self.fileName)" }
    /// Increases by one with every commit.
    public private(set) var generation: UInt64
    public private(set) var records: [String: [UInt8]]
    private let protectorName: String
    private let wrappedKey: [UInt8]
    private let storeKey: SymmetricKey
    /// The protector's monotonic counter, and the value this store was last written at.
    private let counter: (any MonotonicCounter)?

    /// The record (inside the authenticated body) holding the counter value the store was
    /// written at.
    static let counterRecord = "store.counter"

    /// Whether a store exists in `directory`: anything at its path counts, readable or not. A
    /// store that is there but cannot be read (oversized, unreadable, not a file) must stop the
    /// daemon when it opens it, never pass for "not initialised", or `Initialize` would replace it.
    public static func exists(in directory: String) -> Bool {
        var info = stat()
        return lstat("\(directory)/\(fileName)", &info) == 0 || errno != ENOENT
    }

    /// Why the file at the store's path cannot be a store (not a regular file, or larger than a
    /// store can be), or nil. Checked before any hardware is asked for the store's secrets, so a
    /// file that is not a store is reported as what it is.
    public static func shapeProblem(in directory: String) -> String? {
        let path = "\(directory)/\(fileName)"
        var info = stat()
        guard lstat(path, &info) == 0 else {
            return errno == ENOENT ? nil : "\(path): cannot stat: \(String(cString: strerror(errno)))"
        }
        guard info.st_mode & S_IFMT == S_IFREG else { return "\(path) is not a regular file" }
        guard info.st_size <= maxFileBytes else {
            return "\(path): integrity check failed: file is larger than \(maxFileBytes) bytes"
        }
        return nil
    }

    /// Creates a new store holding `initial`, in one durable write (so a crash leaves either no
    /// store or a complete one); refuses to overwrite an existing store.
    public static func create(
        in directory: String,
        protector: some StoreKeyProtector,
        initial: [String: [UInt8]] = [:]
    ) throws(StoreError) -> SealedStore {
        try StatePermissions.ensureDirectory(directory)
        guard !exists(in: directory) else {
            throw StoreError(.alreadyExists, path: "\(directory)/\(fileName)", "a sealed store already exists here")
        }
        let key = SymmetricKey(size: .bits256)
        var store = SealedStore(
            directory: directory,
            generation: 0,
            records: [:],
            protectorName: protector.name,
            wrappedKey: try protector.wrap(key),
            storeKey: key,
            counter: protector.counter
        )
        try store.commit(initial.mapValues { Optional($0) })
        return store
    }

    /// Opens an existing store, checking permissions and every byte's integrity.
    public static func open(in directory: String, protector: some StoreKeyProtector) throws(StoreError) -> SealedStore {
        try StatePermissions.checkDirectory(directory)
        let path = "\(directory)/\(fileName)"
        try StatePermissions.checkFile(path)
        let bytes = try AtomicFile.read(path, limit: maxFileBytes)
        let header = try StoreFileFormat.parseHeader(bytes, path: path)
        guard header.protectorName == protector.name else {
            throw StoreError(
                .integrity,
                path: path,
                "integrity check failed: the store is sealed by '\(header.protectorName)', not '\(protector.name)'"
            )
        }
        let key: SymmetricKey
        do {
            key = try protector.unwrap(header.wrappedKey)
        } catch  where error.code == .unwrapFailed {
            throw StoreError(
                .integrity,
                path: path,
                "integrity check failed: the store key does not unseal with \(protector.name) (\(error.path)); "
                    + "the store header was modified, or the store and its key come from different installations"
            )
        }
        let records = try StoreFileFormat.openBody(bytes, header: header, key: key, path: path)
        if let counter = protector.counter { try checkCounter(records, counter, path: path) }
        return SealedStore(
            directory: directory,
            generation: header.generation,
            records: records,
            protectorName: header.protectorName,
            wrappedKey: header.wrappedKey,
            storeKey: key,
            counter: protector.counter
        )
    }

    /// A store bound to a monotonic counter was written at the counter's value, or one above it
    /// (the store is written first and the counter moved after, so a crash in between leaves the
    /// store one ahead: the counter catches up now). Behind the counter, it is an older copy.
    private static func checkCounter(
        _ records: [String: [UInt8]],
        _ counter: any MonotonicCounter,
        path: String
    ) throws(StoreError) {
        guard let raw = records[counterRecord], raw.count == 8 else {
            throw StoreError(
                .integrity,
                path: path,
                "integrity check failed: the store does not record the monotonic counter it is bound to"
            )
        }
        let written = raw.reduce(0) { $0 << 8 | UInt64($1) }
        let current = try counter.value()
        if written == current { return }
        if written == current + 1 {
            _ = try counter.increment()
            return
        }
        if written < current {
            throw StoreError(
                .rollback,
                path: path,
                "rollback: the monotonic counter (\(current)) is ahead of this store, which was written at \(written): this is not the newest copy of the state directory (an older one was put back), or the counter was moved by someone holding its authorization. ukeyd will not open it; restore the newest state directory"
            )
        }
        throw StoreError(
            .integrity,
            path: path,
            "integrity check failed: the store claims counter \(written), ahead of the TPM's \(current)"
        )
    }

    private init(
        directory: String,
        generation: UInt64,
        records: [String: [UInt8]],
        protectorName: String,
        wrappedKey: [UInt8],
        storeKey: SymmetricKey,
        counter: (any MonotonicCounter)?
    ) {
        self.directory = directory
        self.generation = generation
        self.records = records
        self.protectorName = protectorName
        self.wrappedKey = wrappedKey
        self.storeKey = storeKey
        self.counter = counter
    }

    public subscript(name: String) -> [UInt8]? { records[name] }

    /// Applies `changes` (nil removes a record) and writes the store durably. On failure nothing
    /// in memory changes, so memory never runs ahead of disk.
    public mutating func commit(_ changes: [String: [UInt8]?]) throws(StoreError) {
        var next = records
        for (name, value) in changes {
            guard !name.isEmpty, name.utf8.count <= Self.maxRecordName else {
                throw StoreError(
                    .invalidRecord,
                    path: path,
                    "record name '\(name)' must be 1-\(Self.maxRecordName) bytes"
                )
            }
            next[name] = value
        }
        // Bound to a counter: written at the counter's next value, which is then made current.
        var advance = false
        if let counter {
            let target = try counter.value() + 1
            next[Self.counterRecord] = (0..<8).map { UInt8(truncatingIfNeeded: target >> (56 - 8 * $0)) }
            advance = true
        }
        let nextGeneration = generation + 1
        let bytes = try StoreFileFormat.seal(
            records: next,
            generation: nextGeneration,
            protectorName: protectorName,
            wrappedKey: wrappedKey,
            key: storeKey,
            path: path
        )
        try AtomicFile.write(bytes, to: path, mode: 0o600)
        records = next
        generation = nextGeneration
        if advance, let counter { _ = try counter.increment() }
    }
}
