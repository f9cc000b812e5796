import Crypto
import Foundation
import Glibc

/// The secret that makes ukey's TPM objects ukeyd's alone. Every key ukey makes in the TPM is a
/// primary derived from the owner seed and its template: with a fixed template, anyone who can
/// talk to the TPM (root, or any member of `tss` on /dev/tpmrm0) derives the same key and signs
/// with it. So each template's `unique` carries a value derived from this secret (another
/// template yields another key), each key and the sealed store key carry an auth value derived
/// from it (`TPM2B_SENSITIVE_CREATE.userAuth`), and so does ukey's NV counter (which only that
/// auth may read or move).
///
/// Where it lives, and why there: the store key is sealed to the TPM, so the secret that opens
/// the sealed object cannot be in the store. It is a file of its own in ukeyd's state directory
/// (`tpm-object-secret`, 32 random bytes, 0600 in the 0700 directory, made at Initialize): at host
/// boot ukeyd reads it, derives the storage primary and the sealed object's auth, unseals the
/// store key, and opens the store. A TPM user who is not root cannot read it; root can (and could
/// read ukeyd's memory anyway). A copy of the state directory on another machine still opens
/// nothing: the objects are that TPM's.
public struct TPMObjectSecret: Sendable {
    public static let fileName = "tpm-object-secret"
    let bytes: [UInt8]

    /// A secret of the caller's (tests, the bench: a fresh TPM each).
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32, "a TPM object secret is 32 bytes")
        self.bytes = bytes
    }

    public static func random() -> TPMObjectSecret {
        TPMObjectSecret(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) })
    }

    /// The value for `purpose`: HMAC-SHA256 over a versioned label, 32 bytes.
    func derive(_ purpose: String) -> [UInt8] {
        Array(
            HMAC<SHA256>.authenticationCode(for: Array("ukey-tpm-v1 \(purpose)".utf8), using: SymmetricKey(data: bytes))
        )
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Reads the token's secret; a missing or unsafe file is refused with what to do.
    public static func load(stateDirectory: String) throws(Failure) -> TPMObjectSecret {
        let path = "\(stateDirectory)/\(fileName)"
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw Failure(
                description:
                    "\(path) is missing: this token's TPM objects were made by a ukeyd before TPM authorization (anyone who can talk to the TPM could use its keys and move its counter), or the file was lost; initialise a new token"
            )
        }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_uid == getuid(), info.st_mode & 0o077 == 0 else {
            throw Failure(
                description:
                    "\(path) must be a regular file of ukeyd's user with mode 0600 (it is \(String(info.st_mode & 0o777, radix: 8)))"
            )
        }
        guard let data = FileManager.default.contents(atPath: path), data.count == 32 else {
            throw Failure(description: "\(path) is not 32 bytes: the TPM's objects cannot be derived from it")
        }
        return TPMObjectSecret(bytes: Array(data))
    }

    /// Makes the token's secret (at Initialize): refused if one is there already.
    public static func create(stateDirectory: String) throws(Failure) -> TPMObjectSecret {
        let path = "\(stateDirectory)/\(fileName)"
        let secret = random()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = secret.bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == 32, fsync(fd) == 0 else {
            throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let directory = open(stateDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
        return secret
    }
}
