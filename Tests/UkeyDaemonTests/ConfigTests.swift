import Foundation
import Testing
import UkeyClient
import UkeyConfig
import UkeyDaemon
import UkeyTesting
import UkeyToken
import UkeyVarlink

@Suite("ukeyd.toml")
struct ConfigTests {
    static let sample = """
        # ukeyd settings
        [daemon]
        socket-mode = "0660"   # owner and group
        idle-timeout = 30
        max-connections = 1_000

        [roles]
        admin-group = "wheel"
        hypervisor-group = "kvm"

        [token]
        registers = "soft"
        """

    @Test("the documented settings parse and apply")
    func parse() throws {
        var settings = DaemonSettings()
        try settings.apply(try ConfigFile(parsing: Self.sample))
        #expect(settings.idleTimeout == 30 && settings.maxConnections == 1000)
        #expect(settings.adminGroup == "wheel" && settings.hypervisorGroup == "kvm")
        #expect(settings.stateDirectory == "/var/lib/ukey")
        let file = try ConfigFile(parsing: "list = [\"a\", \"b,c\", ] # x\nquoted = \"has # inside\"\nflag = true\n")
        #expect(
            file["list"] == .strings(["a", "b,c"]) && file["quoted"] == .string("has # inside")
                && file["flag"] == .boolean(true)
        )
    }

    @Test(
        "mistakes are refused with the line",
        arguments: [
            ("[daemon]\nsocket = /run/x\n", "line 2: '/run/x' is not a string"),
            ("[daemon\n", "line 1: a section header"),
            ("a = 1\na = 2\n", "line 2: 'a' is set twice"),
            ("just words\n", "line 1: expected 'key = value'"),
            ("s = \"bad \\q escape\"\n", "line 1: unsupported escape"),
            ("s = \"open\n", "line 1: a string is written in double quotes"),
            ("k y = 1\n", "line 1: key 'k y'"),
        ]
    )
    func mistakes(text: String, message: String) {
        #expect {
            try ConfigFile(parsing: text)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("unknown settings and bad values are refused, naming the setting")
    func unknownSettings() throws {
        var settings = DaemonSettings()
        #expect { try settings.apply(try ConfigFile(parsing: "[daemon]\nidle-timout = 5\n")) } throws: {
            "\($0)".contains("unknown setting 'daemon.idle-timout'")
        }
        #expect { try settings.apply(try ConfigFile(parsing: "[daemon]\nmax-connections = 0\n")) } throws: {
            "\($0)".contains("'daemon.max-connections' must be a whole number in 1-65536")
        }
        #expect { try settings.apply(try ConfigFile(parsing: "[token]\nkeys = \"usb\"\n")) } throws: {
            "\($0)".contains("can be served by soft, tpm or pcsc")
        }
        #expect { try settings.apply(try ConfigFile(parsing: "[token]\nusers = \"tpm\"\n")) } throws: {
            "\($0)".contains("can be served by soft")
        }
        #expect { try settings.apply(try ConfigFile(parsing: "[tpm]\ntcti = \"\"\n")) } throws: {
            "\($0)".contains("TCTI string")
        }
    }

    @Test("the tpm backend per role, and its TCTI")
    func tpmSettings() throws {
        var settings = DaemonSettings()
        #expect(!settings.token.usesTPM && settings.tcti == "device:/dev/tpmrm0" && settings.token == .soft)
        try settings.apply(
            try ConfigFile(
                parsing: "[token]\nregisters = \"tpm\"\nkeys = \"soft\"\n[tpm]\ntcti = \"swtpm:path=/run/swtpm.sock\"\n"
            )
        )
        #expect(
            settings.token.usesTPM
                && settings.token == TokenComposition(registers: .tpm, keys: .soft, users: .soft, store: .deviceKey)
        )
        #expect(settings.tcti == "swtpm:path=/run/swtpm.sock")
    }

    @Test("[tpm] registers: the PCRs a policy may use, refusing IMA's 10 and Keylime's 16 with the reason")
    func tpmRegisters() throws {
        var settings = DaemonSettings()
        #expect(settings.tpmRegisters == nil)
        try settings.apply(try ConfigFile(parsing: "[tpm]\nregisters = \"14-15\"\n"))
        #expect(settings.tpmRegisters == [14, 15])
        #expect(try DaemonSettings.pcrs("8, 9,14-15,23") == [8, 9, 14, 15, 23])
        for (text, reason) in [
            ("9-11", "PCR 10 is IMA's"), ("16", "reset by a Keylime agent"), ("7", "8-15 and 23"), ("15-14", "8-15"),
            ("", "8-15"), ("14,", "8-15"), ("a", "8-15"),
        ] {
            #expect {
                try DaemonSettings.pcrs(text)
            } throws: { error in
                "\(error)".contains(reason)
            }
        }
    }

    @Test("the store follows the keys unless named; a mix that protects nothing is refused before anything opens")
    func composition() throws {
        var settings = DaemonSettings()
        try settings.apply(try ConfigFile(parsing: "[token]\nkeys = \"tpm\"\n"))
        #expect(
            settings.token == TokenComposition(registers: .soft, keys: .tpm, users: .soft, store: .tpm)
                && settings.token.refusal == nil
        )
        #expect(settings.token.roleNames == ["registers": "soft", "keys": "tpm", "users": "soft", "store": "tpm"])

        var named = DaemonSettings()
        try named.apply(try ConfigFile(parsing: "[token]\nstore = \"tpm\"\nkeys = \"soft\"\n"))
        #expect(
            named.token == TokenComposition(registers: .soft, keys: .soft, users: .soft, store: .tpm)
                && named.token.refusal == nil
        )

        var weak = DaemonSettings()
        try weak.apply(try ConfigFile(parsing: "[token]\nkeys = \"tpm\"\nstore = \"device-key\"\n"))
        #expect(weak.token.refusal?.contains("use store = \"tpm\"") == true)
        #expect { try weak.apply(try ConfigFile(parsing: "[token]\nstore = \"usb\"\n")) } throws: {
            "\($0)".contains("can be served by device-key, tpm or pcsc")
        }
    }

    @Test(
        "random configs written as TOML read back to the same values; random text is read or refused with a line inside the file"
    )
    func fuzz() {
        var generator = SeededRandom.forTest()
        let characters = Array("abc XYZ09_-.#=[],\"\\\té€😀")
        func randomString() -> String {
            String(
                (0..<Int.random(in: 0...12, using: &generator)).map { _ in characters.randomElement(using: &generator)!
                }
            )
        }
        func quoted(_ string: String) -> String {
            "\""
                + string.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\t", with: "\\t") + "\""
        }
        func randomKey() -> String {
            String(
                (0..<Int.random(in: 1...8, using: &generator)).map { _ in
                    Array("abz09_-").randomElement(using: &generator)!
                }
            )
        }
        func space() -> String { ["", " ", "\t", "  "].randomElement(using: &generator)! }

        for _ in 0..<1500 {
            // Property 1: what a writer of valid TOML produces reads back to exactly its values.
            var expected: [String: ConfigFile.Value] = [:]
            var text = ""
            for sectionIndex in 0..<Int.random(in: 0...3, using: &generator) {
                let section = "s\(sectionIndex)" + randomKey()
                text +=
                    "\(space())[\(section)]\(space())\(Bool.random(using: &generator) ? "# \(randomString())" : "")\n"
                for _ in 0..<Int.random(in: 0...4, using: &generator) {
                    let key = randomKey()
                    guard expected["\(section).\(key)"] == nil else { continue }
                    let value: ConfigFile.Value
                    let written: String
                    switch Int.random(in: 0..<4, using: &generator) {
                    case 0:
                        let string = randomString()
                        (value, written) = (.string(string), quoted(string))
                    case 1:
                        let number = Int.random(in: -999_999_999...999_999_999, using: &generator)
                        (value, written) = (.integer(number), String(number))
                    case 2:
                        let flag = Bool.random(using: &generator)
                        (value, written) = (.boolean(flag), String(flag))
                    default:
                        let strings = (0..<Int.random(in: 0...3, using: &generator)).map { _ in randomString() }
                        (value, written) = (
                            .strings(strings), "[" + strings.map(quoted).joined(separator: ",\(space())") + "]"
                        )
                    }
                    expected["\(section).\(key)"] = value
                    text +=
                        "\(space())\(key)\(space())=\(space())\(written)\(space())\(Bool.random(using: &generator) ? "# \(randomString())" : "")\n"
                }
            }
            do {
                #expect(try ConfigFile(parsing: text).values == expected, "\(text); \(generator)")
            } catch {
                Issue.record("a valid config was refused: \(error)\n\(text)\n\(generator)")
            }

            // Property 2: arbitrary text is read, or refused naming a line of the text.
            var mutated = Array(text)
            let alphabet = Array("[]=\"#\\, \n\tabc123_-.truefalse")
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0...mutated.count, using: &generator)
                if position < mutated.count, Bool.random(using: &generator) {
                    mutated.remove(at: position)
                } else {
                    mutated.insert(alphabet.randomElement(using: &generator)!, at: position)
                }
            }
            let garbled = String(mutated)
            do {
                let file = try ConfigFile(parsing: garbled)
                var settings = DaemonSettings()
                _ = try? settings.apply(file)
            } catch {
                let lines = garbled.split(separator: "\n", omittingEmptySubsequences: false).count
                #expect(
                    (1...lines).contains(error.line) && !error.message.isEmpty,
                    "\(error) for \(garbled); \(generator)"
                )
            }
        }
    }

    @Test(
        "token.algorithm and token.sm2-id: p256 or sm2 with an ID (default GM/T's); mistakes refused naming the setting; sm2 needs every role soft"
    )
    func algorithmSettings() throws {
        var settings = DaemonSettings()
        #expect(settings.algorithm == nil && settings.algorithmRefusal == nil)
        try settings.apply(try ConfigFile(parsing: "[token]\nalgorithm = \"sm2\"\n"))
        #expect(settings.algorithm == .sm2Default && settings.algorithmRefusal == nil)
        var site = DaemonSettings()
        try site.apply(try ConfigFile(parsing: "[token]\nalgorithm = \"sm2\"\nsm2-id = \"ukey-site-7\"\n"))
        #expect(site.algorithm == .sm2(id: Array("ukey-site-7".utf8)))
        var p256 = DaemonSettings()
        try p256.apply(try ConfigFile(parsing: "[token]\nalgorithm = \"p256\"\n"))
        #expect(p256.algorithm == .p256)
        let mistakes = [
            ("[token]\nalgorithm = \"rsa\"\n", "'token.algorithm' must be \"p256\" or \"sm2\""),
            ("[token]\nsm2-id = \"abc\"\n", "'token.sm2-id' needs algorithm = \"sm2\""),
            ("[token]\nalgorithm = \"p256\"\nsm2-id = \"abc\"\n", "'token.sm2-id' is for algorithm = \"sm2\""),
            (
                "[token]\nalgorithm = \"sm2\"\nsm2-id = \"\"\n",
                "'token.sm2-id': the SM2 ID must be 1-64 printable ASCII"
            ),
            (
                "[token]\nalgorithm = \"sm2\"\nsm2-id = \"\(String(repeating: "x", count: 65))\"\n",
                "'token.sm2-id': the SM2 ID must be 1-64 printable ASCII"
            ),
            ("[token]\nalgorithm = 2\n", "'token.algorithm' must be a string"),
        ]
        for (text, message) in mistakes {
            var refused = DaemonSettings()
            #expect { try refused.apply(try ConfigFile(parsing: text)) } throws: { "\($0)".contains(message) }
        }
        for role in ["registers", "keys", "users"] {
            var mixed = DaemonSettings()
            try mixed.apply(
                try ConfigFile(
                    parsing: "[token]\nalgorithm = \"sm2\"\n\(role) = \"\(role == "users" ? "pcsc" : "tpm")\"\n"
                )
            )
            #expect(mixed.algorithmRefusal?.contains("needs every role soft") == true, "\(role)")
        }
    }

    @Test(
        "ukeyd keeps the algorithm a token was initialised with: settings that name another are refused at start, saying which; none named opens it; sm2 with a TPM role does not start"
    )
    func algorithmIsTheToken() throws {
        let f = try DaemonFixture(load: false, backend: .sm2)
        #expect(try f.daemon.call("io.ukey.Token.Info")["algorithms"]?.arrayValue?.contains("sm2-sm3") == true)
        f.daemon.stop()
        for (arguments, message) in [
            (
                ["--algorithm", "p256"],
                "was initialised with SM2 (ID 1234567812345678) keys, but the settings name P-256"
            ),
            (["--algorithm", "sm2", "--sm2-id", "ukey-site-7"], "but the settings name SM2 (ID ukey-site-7)"),
            (["--algorithm", "sm2", "--registers", "tpm"], "needs every role soft"),
        ] {
            f.daemon.extraArguments = ["--allow-demo-keys", "--banks", "sha256,sm3"] + arguments
            #expect(throws: TestDaemonError.self) { try f.daemon.start() }
            #expect(f.daemon.log().contains(message), "\(arguments): \(f.daemon.log().suffix(600))")
        }
        f.daemon.extraArguments = ["--allow-demo-keys", "--banks", "sha256,sm3"]
        try f.daemon.start()
        #expect(try f.daemon.call("io.ukey.Token.Info")["algorithms"]?.arrayValue?.contains("sm2-sm3") == true)
    }

    @Test("ukeyd reads --config, refuses a bad one at start, and SIGHUP applies a new connection limit")
    func daemonConfigAndReload() throws {
        let directory = try TemporaryDirectory("ukey-config")
        let config = directory.file("ukeyd.toml")
        try "[daemon]\nmax-connections = 2\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try TestDaemon(arguments: ["--config", config])
        // The held connections close at the end of this block, so the graceful stop below need
        // not wait for their idle timeout.
        do {
            // The start-up probe's connection counts until ukeyd sees it closed, which on a loaded
            // machine can be after the first of these arrives: such a connection is refused, saying so.
            let held = try (0..<2).map { _ in try admittedConnection(daemon) }
            #expect(try daemon.connect().receive().error == "io.ukey.TooManyConnections")
            // A client that writes its call at once still hears why, not just a closed connection.
            #expect { try daemon.connect().call("org.varlink.service.GetInfo") } throws: {
                ($0 as? VarlinkError)?.name == "io.ukey.TooManyConnections"
            }

            try "[daemon]\nmax-connections = 3\n".write(toFile: config, atomically: true, encoding: .utf8)
            kill(daemon.pid, SIGHUP)
            var reloaded = false
            for _ in 0..<500 where !reloaded {
                reloaded = daemon.log().contains("settings reloaded")
                if !reloaded { usleep(20_000) }
            }
            #expect(reloaded)
            #expect(try daemon.connect().call("org.varlink.service.GetInfo")["product"] == "ukeyd")
            withExtendedLifetime(held) {}
        }

        // A config with a typo stops the start, saying where.
        daemon.stop()
        try "[daemon]\nmax-conections = 3\n".write(toFile: config, atomically: true, encoding: .utf8)
        #expect(throws: TestDaemonError.self) { try daemon.start() }
        #expect(daemon.log().contains("unknown setting 'daemon.max-conections'"))
    }

    /// A connection ukeyd admitted, retried (for at most 10 s) while earlier ones are still counted.
    private func admittedConnection(_ daemon: TestDaemon) throws -> VarlinkConnection {
        for _ in 0..<200 {
            let connection = try daemon.connect()
            do {
                _ = try connection.call("org.varlink.service.GetInfo")
                return connection
            } catch let error as VarlinkError where error.name == "io.ukey.TooManyConnections" {
                usleep(50_000)
            }
        }
        throw VarlinkError("io.ukey.TooManyConnections", [:])
    }
}
