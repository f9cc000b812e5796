import Testing
import UkeyCore

/// Property tests: the state machine against a direct reading of Theorem 1 on random trees (depth up
/// to 8), random measurement orders and random tampering.
@Suite("Boot chain properties (Theorem 1)")
struct ChainPropertyTests {
    struct Measurement {
        let entity: String
        let component: String
        let good: Bool
    }

    /// Theorem 1 read directly: an entity is trusted at time t iff every component was measured and
    /// matched before t, each measurement happened while its parent was trusted, and the parent is
    /// still trusted at t; root is always trusted. Nothing here shares code with `BootChain`.
    struct Oracle {
        let expected: ExpectedSet
        let log: [Measurement]
        private var memo: [String: Bool] = [:]

        init(expected: ExpectedSet, log: [Measurement]) {
            self.expected = expected
            self.log = log
        }

        mutating func trusted(_ name: String, at time: Int) -> Bool {
            if name == Entity.rootName { return true }
            let key = "\(name)@\(time)"
            if let known = memo[key] { return known }
            let entity = expected.entity(named: name)!
            let mine = log[..<time].enumerated().filter { $0.element.entity == name }
            var result = trusted(entity.parent, at: time)
            result = result && mine.allSatisfy(\.element.good)
            result = result && Set(mine.map(\.element.component)) == Set(entity.components.map(\.name))
            if result {
                for (index, _) in mine where !trusted(entity.parent, at: index) {
                    result = false
                    break
                }
            }
            memo[key] = result
            return result
        }

        mutating func untrusted(_ name: String, at time: Int) -> Bool {
            if name == Entity.rootName { return false }
            let entity = expected.entity(named: name)!
            if untrusted(entity.parent, at: time) { return true }
            for (index, m) in log[..<time].enumerated() where m.entity == name {
                if !m.good || !trusted(entity.parent, at: index) { return true }
            }
            return false
        }

        mutating func state(_ name: String, at time: Int) -> EntityState {
            if trusted(name, at: time) { return .trusted }
            return untrusted(name, at: time) ? .untrusted : .pending
        }
    }

    static func randomTree(_ rng: inout SplitMix64) -> ExpectedSet {
        let count = Int.random(in: 1...14, using: &rng)
        var depth: [String: Int] = ["root": 0]
        var entities: [Entity] = []
        for index in 0..<count {
            let candidates = depth.filter { $0.value < 8 }.keys.sorted()
            // Half the time extend the newest entity, so deep chains (up to depth 8) occur often.
            let newest = entities.last.map(\.name).flatMap { depth[$0]! < 8 ? $0 : nil }
            let parent = (Bool.random(using: &rng) ? newest : nil) ?? candidates.randomElement(using: &rng)!
            let name = "e\(index)"
            depth[name] = depth[parent]! + 1
            let components = (0..<Int.random(in: 1...3, using: &rng)).map { "c\($0)" }
            entities.append(
                Entity(
                    name: name,
                    parent: parent,
                    kind: .host,
                    register: Int.random(in: 8...15, using: &rng),
                    components: components.map { Component(name: $0, expected: Fixtures.digest("\(name)/\($0)")) }
                )
            )
        }
        // Shuffle declaration order: the set must order parents first by itself.
        return try! ExpectedSet(entities: entities.shuffled(using: &rng))
    }

    static func randomLog(_ expected: ExpectedSet, _ rng: inout SplitMix64) -> [Measurement] {
        let tamperRate = [0.0, 0.05, 0.3].randomElement(using: &rng)!
        var log: [Measurement] = []
        func add(_ entity: Entity, _ component: String) {
            log.append(
                Measurement(
                    entity: entity.name,
                    component: component,
                    good: Double.random(in: 0..<1, using: &rng) >= tamperRate
                )
            )
        }
        if Bool.random(using: &rng) {
            // Mostly in boot order, so that deep chains actually become trusted.
            for entity in expected.entities {
                for component in entity.components.shuffled(using: &rng) { add(entity, component.name) }
            }
            for _ in 0..<Int.random(in: 0...4, using: &rng) where log.count > 1 {
                let i = Int.random(in: 0..<log.count, using: &rng)
                let j = Int.random(in: 0..<log.count, using: &rng)
                log.swapAt(i, j)
            }
        } else {
            for _ in 0..<Int.random(in: 0...40, using: &rng) {
                let entity = expected.entities.randomElement(using: &rng)!
                add(entity, entity.components.randomElement(using: &rng)!.name)
            }
        }
        return log
    }

    @Test("the state machine agrees with Theorem 1 after every measurement", arguments: 0..<4)
    func agreesWithTheorem(seedBlock: Int) throws {
        var rng = SplitMix64(seed: UInt64(0xC0FFEE + seedBlock))
        var trustedSeen = 0
        var untrustedSeen = 0
        var maxDepth = 0
        for _ in 0..<250 {
            let expected = Self.randomTree(&rng)
            let log = Self.randomLog(expected, &rng)
            var oracle = Oracle(expected: expected, log: log)
            var boot = MeasuredBoot(expected: expected, bootID: "prop")
            for (time, m) in log.enumerated() {
                let component = expected.entity(named: m.entity)!.component(named: m.component)!
                let digest = m.good ? component.expected : Fixtures.digest("tampered")
                let (outcome, index) = try boot.measure(entity: m.entity, component: m.component, digest: digest)
                #expect(index == time)
                #expect(outcome.match == m.good)
                // After every step, every entity's state equals the oracle's.
                for entity in expected.entities {
                    let want = oracle.state(entity.name, at: time + 1)
                    let got = boot.chain.state(of: entity.name)
                    #expect(
                        got == want,
                        "\(entity.name) after step \(time): got \(String(describing: got)), Theorem 1 says \(want)"
                    )
                }
            }
            for entity in expected.entities {
                let status = boot.chain.status(of: entity.name)!
                if status.state == .trusted { trustedSeen += 1 }
                if status.state == .untrusted {
                    untrustedSeen += 1
                    // An entity with no bad measurement of its own can only be untrusted through an ancestor.
                    let ownFault = log.enumerated().contains { index, m in
                        m.entity == entity.name && (!m.good || !oracle.trusted(entity.parent, at: index))
                    }
                    if !ownFault { #expect(status.reason == .ancestorUntrusted) }
                }
                maxDepth = max(maxDepth, expected.ancestors(of: entity.name).count)
            }
            #expect(boot.eventLog.events.count == log.count)
            #expect(boot.eventLog.replay() == boot.registers)
        }
        // The generator must exercise all outcomes and deep trees, or the property proves little.
        #expect(trustedSeen > 100 && untrustedSeen > 100)
        #expect(maxDepth >= 6)
    }
}

/// A small seeded generator, so a failing case can be replayed exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
