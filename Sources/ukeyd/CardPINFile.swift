import Foundation
import UkeyToken

/// The card's PIN, from a file only root may read: ukeyd needs it for every card signature (the
/// signature key wants its PIN each time) and to unwrap its store. A file that others can read
/// or write is refused, saying so.
enum CardPINFile {
    static func read(_ path: String) throws(TokenError) -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw TokenError(
                .unavailable,
                "the card's PIN file \(path) cannot be read (\(String(cString: strerror(errno)))); write the PIN there, mode 0600"
            )
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw TokenError(.unavailable, "the card's PIN file \(path) is not a regular file")
        }
        guard info.st_mode & 0o077 == 0, info.st_uid == geteuid() else {
            throw TokenError(
                .unavailable,
                "the card's PIN file \(path) has mode \(String(info.st_mode & 0o777, radix: 8)) and owner \(info.st_uid): it must be 0600 and ukeyd's own"
            )
        }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 64,
            let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .newlines),
            (1...8).contains(text.utf8.count)
        else { throw TokenError(.unavailable, "the card's PIN file \(path) must hold the PIN alone (1-8 characters)") }
        return text
    }
}
