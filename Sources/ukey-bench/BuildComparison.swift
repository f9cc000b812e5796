import UkeyAPI
import Foundation
import UkeyVarlink

/// `make bench-compare`: this build's ukeyd against another build's (`UKEYD_BASELINE_BINARY`,
/// `scripts/bench-compare.sh` builds it from a git revision), on the three calls the hot paths
/// take: GetInfo (the protocol floor), CheckExec (the exec path), Measure (the boot path). The two
/// daemons run one after the other, alternating round by round, so the machine's slow phases fall
/// on both; each figure is the median of the rounds, and the result is the ratio this/baseline.
enum BuildComparison {
    struct Rates {
        var getInfo: [Double] = []
        var checkExec: [Double] = []
        var measure: [Double] = []
    }

    static let rounds = 5
    static let seconds = 2.0
    static let connections = [1, 16]

    static func run(current: String, baseline: String, policy: String) async throws {
        let kernel = policy.split(separator: "\n").first { $0.contains("digest: sha256:") }!.split(separator: " ").last!
        var rates: [String: [Int: Rates]] = ["baseline": [:], "this build": [:]]
        print(
            "ukeyd, this build against the baseline build, \(rounds) alternating rounds of \(Int(seconds)) s per call (pipelined 64 deep)\n"
        )
        for round in 1...rounds {
            for (name, binary) in [("baseline", baseline), ("this build", current)] {
                let measured = try await once(
                    binary: binary,
                    policy: policy,
                    kernel: String(kernel),
                    name: name == "baseline" ? "base" : "this"
                )
                for (connections, value) in measured {
                    var r = rates[name]![connections] ?? Rates()
                    r.getInfo.append(value.getInfo)
                    r.checkExec.append(value.checkExec)
                    r.measure.append(value.measure)
                    rates[name]![connections] = r
                }
            }
            print("  round \(round) of \(rounds) done")
        }
        print("")
        var worst = Double.infinity
        for connections in connections {
            let base = rates["baseline"]![connections]!
            let this = rates["this build"]![connections]!
            for (call, b, t) in [
                ("GetInfo", base.getInfo, this.getInfo), ("CheckExec", base.checkExec, this.checkExec),
                ("Measure", base.measure, this.measure),
            ] {
                let ratio = median(t) / median(b)
                worst = min(worst, ratio)
                let label = "\(call), \(connections) connection(s)".padding(toLength: 30, withPad: " ", startingAt: 0)
                print(
                    String(
                        format: "  %@ baseline %8.0f /s   this build %8.0f /s   x%.2f",
                        label,
                        median(b),
                        median(t),
                        ratio
                    )
                )
            }
            print(
                String(
                    format:
                        "  (this build's own ratios, %d connection(s): CheckExec/GetInfo %.2f, Measure/GetInfo %.2f)",
                    connections,
                    median(this.checkExec) / median(this.getInfo),
                    median(this.measure) / median(this.getInfo)
                )
            )
        }
        print(
            String(
                format:
                    "\nno regression beyond noise (every call at least 0.90x the baseline's rate): %@ (lowest x%.2f)",
                worst >= 0.9 ? "met" : "NOT met",
                worst
            )
        )
    }

    /// One round for one build: a fresh daemon, the demo host booted, each call's rate.
    private static func once(
        binary: String,
        policy: String,
        kernel: String,
        name: String
    ) async throws -> [Int: (getInfo: Double, checkExec: Double, measure: Double)] {
        let (socket, _, _, stop) = try DaemonBench.start(binary: binary, policy: policy, name: name)
        defer { stop() }
        let getInfo = VarlinkCall(VarlinkService.GetInfo.self, Empty())
        let measure = VarlinkCall(Boot.Measure.self, .init(entity: "vmm", component: "kernel", digest: kernel))
        var out: [Int: (getInfo: Double, checkExec: Double, measure: Double)] = [:]
        var measured: [Int: Double] = [:]
        for connections in connections {
            measured[connections] = try await DaemonBench.rate(
                socket: socket,
                connections: connections,
                seconds: seconds,
                call: measure
            )
        }
        // CheckExec needs the demo host booted (its VM trusted); the boot starts afresh.
        try ExecBench.bootDemoHost(socket: socket, policyText: policy)
        let check = VarlinkCall(Runtime.CheckExec.self, Bench.officeCheck)
        for connections in connections {
            let floor = try await DaemonBench.rate(
                socket: socket,
                connections: connections,
                seconds: seconds,
                call: getInfo
            )
            let checks = try await DaemonBench.rate(
                socket: socket,
                connections: connections,
                seconds: seconds,
                call: check
            )
            out[connections] = (floor, checks, measured[connections]!)
        }
        return out
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty
            ? 0
            : sorted.count % 2 == 1
                ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
