import Crypto
import UkeyStore

extension FuzzTarget {
    /// The sealed store's file (`store.sealed`): the header is read before anything is
    /// authenticated, so it is untrusted; the body must authenticate under the store key.
    static let store = FuzzTarget(
        name: "store",
        property:
            "a header is taken only with the magic and room for a sealed body; a body opens under the key only as sealed, and its records re-seal and re-open to the same records",
        check: { bytes throws(FuzzFailure) in
            guard let header = try? StoreFileFormat.parseHeader(bytes, path: "fuzz") else { return }
            try require(
                bytes.starts(with: Array("UKEYSTR1".utf8)) && header.bodyOffset + 28 <= bytes.count,
                "a header without its magic or room for a body"
            )
            guard let records = try? StoreFileFormat.openBody(bytes, header: header, key: storeKey, path: "fuzz") else {
                return
            }
            let resealed = try? StoreFileFormat.seal(
                records: records,
                generation: 1,
                protectorName: "fuzz",
                wrappedKey: [],
                key: storeKey,
                path: "fuzz"
            )
            let reopened = resealed.flatMap { sealed in
                (try? StoreFileFormat.parseHeader(sealed, path: "fuzz")).flatMap {
                    try? StoreFileFormat.openBody(sealed, header: $0, key: storeKey, path: "fuzz")
                }
            }
            try require(reopened == records, "records that opened do not survive sealing again")
        },
        seeds: {
            let records: [String: [UInt8]] = [
                "token": Array(#"{"serial":"1"}"#.utf8), "user.alice": [1, 2, 3], "empty": [],
            ]
            return [
                (try? StoreFileFormat.seal(
                    records: records,
                    generation: 7,
                    protectorName: "device-key",
                    wrappedKey: [9, 9, 9],
                    key: storeKey,
                    path: "seed"
                )) ?? []
            ]
        }
    )

    /// A fixed key, so seeds sealed under it open in the fuzzer (and mutations of them must not).
    static let storeKey = SymmetricKey(data: [UInt8](repeating: 0x5A, count: 32))
}
