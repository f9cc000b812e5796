import UkeyPIV
import Foundation
import UkeyStore

/// The card's state in a sealed store (`UkeyStore`: AES-GCM, the key in `device.key` beside it,
/// 0600 files in a 0700 directory), so the card survives a restart and a copied or edited file
/// does not open.
public final class PIVStateFile {
    static let record = "piv.state"
    private var store: SealedStore

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    private init(store: SealedStore) {
        self.store = store
    }

    /// Opens the card in `directory`, or makes a factory-fresh one there if there is none.
    public static func openOrCreate(directory: String) throws(Failure) -> (PIVStateFile, PIVCardState) {
        let protector = DeviceKeyProtector(stateDirectory: directory)
        do {
            if SealedStore.exists(in: directory) {
                let store = try SealedStore.open(in: directory, protector: protector)
                guard let bytes = store[record] else {
                    throw Failure(description: "\(directory) holds a sealed store without a card in it")
                }
                return (PIVStateFile(store: store), try decode(bytes))
            }
            let fresh = PIVCardState.factory()
            let store = try SealedStore.create(
                in: directory,
                protector: protector,
                initial: [record: try encode(fresh)]
            )
            return (PIVStateFile(store: store), fresh)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "the card's state in \(directory): \(error)")
        }
    }

    /// Writes the state durably (the store's atomic replace and fsync).
    public func save(_ state: PIVCardState) throws {
        try store.commit([Self.record: try Self.encode(state)])
    }

    static func encode(_ state: PIVCardState) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array(try encoder.encode(state))
    }

    static func decode(_ bytes: [UInt8]) throws(Failure) -> PIVCardState {
        do {
            return try JSONDecoder().decode(PIVCardState.self, from: Data(bytes))
        } catch {
            throw Failure(description: "the card's state does not decode: \(error)")
        }
    }
}
