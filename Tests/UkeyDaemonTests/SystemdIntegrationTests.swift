import Foundation
import Testing
import UkeyClient
import UkeyTesting
import UkeyVarlink

/// ukeyd under systemd's protocols: a socket passed by activation, and readiness notification.
@Suite("ukeyd: systemd socket activation and readiness")
struct SystemdIntegrationTests {
    static let activate = ExternalTool("systemd-socket-activate")

    @Test(
        "serves the socket systemd passes (LISTEN_FDS) instead of binding its own",
        .enabled(if: activate.shouldRun, Comment(rawValue: activate.skipReason))
    )
    func socketActivation() throws {
        let dir = try TemporaryDirectory("ukey-activation")
        let socket = dir.file("activated.sock")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.activate.path ?? "/usr/bin/systemd-socket-activate")
        process.arguments = [
            "-l", socket, PackagePaths.builtProduct("ukeyd"),
            "--state-dir", dir.file("state"), "--runtime-dir", dir.file("run"), "--socket", dir.file("run/unused.sock"),
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        var info: [String: JSONValue]?
        for _ in 0..<200 where info == nil {
            info = try? VarlinkConnection(path: socket, timeout: 10).call("org.varlink.service.GetInfo")
            if info == nil { usleep(25_000) }
        }
        #expect(info?["product"] == "ukeyd")
        #expect(!FileManager.default.fileExists(atPath: dir.file("run/unused.sock")), "ukeyd bound its own socket")
    }

    @Test("sends READY=1 to NOTIFY_SOCKET once it serves")
    func readiness() throws {
        let dir = try TemporaryDirectory("ukey-notify")
        let notifyPath = dir.file("notify.sock")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in notifyPath.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: PackagePaths.builtProduct("ukeyd"))
        process.arguments = [
            "--state-dir", dir.file("state"), "--runtime-dir", dir.file("run"), "--socket", dir.file("run/ukeyd.sock"),
        ]
        process.environment = ["NOTIFY_SOCKET": notifyPath]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = recv(fd, &buffer, buffer.count, 0)
        #expect(count > 0)
        #expect(String(decoding: buffer.prefix(max(0, count)), as: UTF8.self) == "READY=1")
        // Ready means serving.
        #expect(
            try VarlinkConnection(path: dir.file("run/ukeyd.sock")).call("org.varlink.service.GetInfo")["product"]
                == "ukeyd"
        )
    }
}
