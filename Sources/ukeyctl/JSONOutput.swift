import ArgumentParser
import Foundation
import UkeyVarlink

/// `--json` for the commands that work on files, without ukeyd (policy lint, show, simulate, diff,
/// enroll, export; keygen; quote verify): the same result a person reads, as one JSON object on
/// standard output, the exit status unchanged. Given before the subcommand it is $UKEY_JSON.
struct JSONOutput: ParsableArguments {
    @Flag(name: .customLong("json"), help: "Print the result as JSON.")
    var jsonFlag = false

    var json: Bool { jsonFlag || ProcessInfo.processInfo.environment["UKEY_JSON"] == "1" }

    func emit(_ object: [String: JSONValue]) {
        print(DaemonOptions.jsonText(.object(object)))
    }
}
