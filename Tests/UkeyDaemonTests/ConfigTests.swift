import Foundation
import Testing
import UkeyClient
import UkeyDaemon
import UkeyTesting
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
        #expect(file["list"] == .strings(["a", "b,c"]) && file["quoted"] == .string("has # inside") && file["flag"] == .boolean(true))
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
        #expect { try settings.apply(try ConfigFile(parsing: "[daemon]\nidle-timout = 5\n")) } throws: { "\($0)".contains("unknown setting 'daemon.idle-timout'") }
        #expect { try settings.apply(try ConfigFile(parsing: "[daemon]\nmax-connections = 0\n")) } throws: { "\($0)".contains("'daemon.max-connections' must be a whole number in 1-65536") }
        #expect { try settings.apply(try ConfigFile(parsing: "[token]\nkeys = \"pcsc\"\n")) } throws: { "\($0)".contains("can be served by soft or tpm") }
        #expect { try settings.apply(try ConfigFile(parsing: "[token]\nusers = \"tpm\"\n")) } throws: { "\($0)".contains("can be served by soft") }
        #expect { try settings.apply(try ConfigFile(parsing: "[tpm]\ntcti = \"\"\n")) } throws: { "\($0)".contains("TCTI string") }
    }

    @Test("the tpm backend per role, and its TCTI")
    func tpmSettings() throws {
        var settings = DaemonSettings()
        #expect(!settings.usesTPM && settings.tcti == "device:/dev/tpmrm0")
        try settings.apply(try ConfigFile(parsing: "[token]\nregisters = \"tpm\"\nkeys = \"soft\"\n[tpm]\ntcti = \"swtpm:path=/run/swtpm.sock\"\n"))
        #expect(settings.usesTPM && settings.backends == ["registers": "tpm", "keys": "soft", "users": "soft"])
        #expect(settings.tcti == "swtpm:path=/run/swtpm.sock")
    }

    @Test("random text never crashes the reader")
    func fuzz() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("[]=\"#\\, \n\tabc123_-.truefalse")
        for _ in 0..<3000 {
            let text = String((0..<Int.random(in: 0...200, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            if let file = try? ConfigFile(parsing: text) {
                var settings = DaemonSettings()
                _ = try? settings.apply(file)
            }
        }
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
            #expect { try daemon.connect().call("org.varlink.service.GetInfo") } throws: { ($0 as? VarlinkError)?.name == "io.ukey.TooManyConnections" }

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
