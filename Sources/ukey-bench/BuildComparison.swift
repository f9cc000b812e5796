import UkeyAPI
import Foundation
import UkeyVarlink

/// `make bench-compare`: this build's ukeyd against another build's (`UKEYD_BASELINE_BINARY`,
/// `scripts/bench-compare.sh` builds it from a git revision), on the three calls the hot paths
/// take: GetInfo (the protocol floor), CheckExec (the exec path), Measure (the boot path).
///
/// The machines this runs on are shared and their speed drifts by 10-20% within seconds, more
/// than the differences worth finding. So the two daemons run side by side, and every figure is a
/// pair: the same call measured on one and then at once on the other (the order alternating from
/// round to round), and the result is the median of the pairs' ratios this/baseline. A slow phase
/// then falls on both halves of a pair, and one odd pair moves the median little.
enum BuildComparison {
    static let rounds = 15
    static let seconds = 1.0
    static let connections = [1, 16]
    /// The calls compared, in the order a round measures them (Measure first: CheckExec needs the
    /// demo host booted, which the Measure calls would change).
    static let calls = ["Measure", "GetInfo", "CheckExec"].filter { call in
        // UKEY_COMPARE_CALLS=CheckExec,GetInfo compares only those (to look at one closely).
        guard let only = ProcessInfo.processInfo.environment["UKEY_COMPARE_CALLS"] else { return true }
        return only.split(separator: ",").contains { $0 == call }
    }
    /// What the issue asks of a change that should cost nothing on these paths.
    static let tolerance = 0.95

    struct Pairs {
        var baseline: [Double] = []
        var current: [Double] = []
        var ratios: [Double] = []
    }

    static func run(current: String, baseline: String, policy: String) async throws {
        let kernel = String(
            policy.split(separator: "\n").first { $0.contains("digest: sha256:") }!.split(separator: " ").last!
        )
        print(
            "ukeyd, this build against the baseline build: \(rounds) rounds, each call measured \(Int(seconds)) s on one daemon and then on the other (pipelined 64 deep)\n"
        )
        var pairs: [String: Pairs] = [:]
        for round in 1...rounds {
            let base = try DaemonBench.start(binary: baseline, policy: policy, name: "base")
            defer { base.stop() }
            let this = try DaemonBench.start(binary: current, policy: policy, name: "this")
            defer { this.stop() }
            let thisFirst = round % 2 == 0
            for call in calls {
                if call == calls.first(where: { $0 != "Measure" }) {
                    for socket in [base.socket, this.socket] {
                        try ExecBench.bootDemoHost(socket: socket, policyText: policy)
                    }
                }
                for connections in connections {
                    let varlink = Self.call(call, kernel: kernel)
                    var rates: [String: Double] = [:]
                    for (name, socket) in thisFirst
                        ? [("this", this.socket), ("base", base.socket)]
                        : [("base", base.socket), ("this", this.socket)]
                    {
                        rates[name] = try await DaemonBench.rate(
                            socket: socket,
                            connections: connections,
                            seconds: seconds,
                            call: varlink
                        )
                    }
                    let key = "\(call), \(connections) connection(s)"
                    var pair = pairs[key] ?? Pairs()
                    pair.baseline.append(rates["base"]!)
                    pair.current.append(rates["this"]!)
                    pair.ratios.append(rates["this"]! / rates["base"]!)
                    pairs[key] = pair
                }
            }
            print("  round \(round) of \(rounds) done")
        }
        print("")
        var worst = Double.infinity
        for connections in connections {
            for call in ["GetInfo", "CheckExec", "Measure"] {
                let key = "\(call), \(connections) connection(s)"
                guard let pair = pairs[key] else { continue }
                let ratio = median(pair.ratios)
                worst = min(worst, ratio)
                print(
                    String(
                        format: "  %@ baseline %8.0f /s   this build %8.0f /s   x%.2f (pairs x%.2f-x%.2f)",
                        key.padding(toLength: 30, withPad: " ", startingAt: 0),
                        median(pair.baseline),
                        median(pair.current),
                        ratio,
                        pair.ratios.min()!,
                        pair.ratios.max()!
                    )
                )
            }
        }
        print(
            String(
                format:
                    "\nevery call within %.0f%% of the baseline (the median of its pairs at least x%.2f): %@ (lowest x%.2f)",
                (1 - tolerance) * 100,
                tolerance,
                worst >= tolerance ? "met" : "NOT met",
                worst
            )
        )
    }

    private static func call(_ name: String, kernel: String) -> VarlinkCall {
        switch name {
        case "GetInfo": VarlinkCall(VarlinkService.GetInfo.self, Empty())
        case "CheckExec": VarlinkCall(Runtime.CheckExec.self, Bench.officeCheck)
        default: VarlinkCall(Boot.Measure.self, .init(entity: "vmm", component: "kernel", digest: kernel))
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty
            ? 0
            : sorted.count % 2 == 1
                ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
