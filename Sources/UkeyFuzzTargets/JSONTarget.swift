import Foundation
import UkeyCodec

extension FuzzTarget {
    /// The one JSON reader: what it takes survives our writer unchanged, and Foundation's own
    /// parser reads the same bytes to the same value (it may refuse what we take only where we
    /// are documented to be laxer, which is nowhere: so any refusal is a finding).
    static let json = FuzzTarget(
        name: "json",
        property: "parse -> write -> parse gives the same value; Foundation reads the same bytes to the same value",
        check: { bytes throws(FuzzFailure) in
            guard let value = try? JSONReader.parse(bytes) else { return }
            let written = JSONWriter.write(value)
            try require(
                (try? JSONReader.parse(written)) == value,
                "our writer's output \(String(decoding: written, as: UTF8.self)) reads back otherwise"
            )
            guard let theirs = try? JSONSerialization.jsonObject(with: Data(bytes), options: .fragmentsAllowed) else {
                throw FuzzFailure("Foundation refuses what our reader takes: \(String(decoding: bytes, as: UTF8.self))")
            }
            try require(
                FoundationJSON.agrees(value, theirs),
                "Foundation reads \(String(decoding: bytes, as: UTF8.self)) otherwise"
            )
        },
        seeds: {
            [
                #"{"method":"io.ukey.Boot.Measure","parameters":{"entity":"vmm","digest":"sha256:00"},"more":true}"#,
                #"[1,-0,1.5e3,-2E-2,9223372036854775807,9223372036854775808,true,false,null]"#,
                #""\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 é""#, "{}", "[]", #"{"a":{"b":[{"c":[]}]}}"#,
            ].map { Array($0.utf8) }
        }
    )
}
