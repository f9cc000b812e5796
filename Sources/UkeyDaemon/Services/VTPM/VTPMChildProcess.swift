import CFanotify
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program ukeyd runs for a vTPM (swtpm_setup, swtpm): spawned with only the descriptors it
/// is given (standard input from /dev/null, its output to a log file, a secret on descriptor
/// 3 through a pipe, a listening socket on 4), so none of ukeyd's own sockets or files leak
/// into a long-lived swtpm.
struct VTPMChildProcess: Sendable {
    let pid: pid_t

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Spawns `path` with `arguments`; `secret`, if any, is readable once on descriptor 3, and
    /// `listening`, if any, is descriptor 4.
    static func spawn(
        _ path: String,
        _ arguments: [String],
        secret: [UInt8]?,
        listening: Int32? = nil,
        log: String,
        environment: [String: String]
    ) throws(Failure) -> VTPMChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pipeEnds: [Int32] = [-1, -1]
        if let secret {
            guard ukey_pipe_cloexec(&pipeEnds) == 0 else {
                throw Failure(description: "cannot make a pipe: \(String(cString: strerror(errno)))")
            }
            // The key is 32 hex digits: far below a pipe's buffer, so the write never blocks.
            let written = secret.withUnsafeBytes { write(pipeEnds[1], $0.baseAddress, $0.count) }
            close(pipeEnds[1])
            guard written == secret.count else {
                close(pipeEnds[0])
                throw Failure(description: "cannot write the key to its pipe")
            }
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[0], 3)
        }
        if let listening { posix_spawn_file_actions_adddup2(&actions, listening, 4) }
        ukey_spawn_close_from(&actions, listening != nil ? 5 : secret == nil ? 3 : 4)
        defer { if pipeEnds[0] >= 0 { close(pipeEnds[0]) } }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // Its own process group: a signal to ukeyd's group does not reach a VM's vTPM.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)
        )

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard spawned == 0 else {
            throw Failure(description: "cannot run \(path): \(String(cString: strerror(spawned)))")
        }
        return VTPMChildProcess(pid: pid)
    }

    /// Waits for the process to end, off Swift's pool; its exit status, or 128 + the signal.
    func exitStatus() async -> Int32 {
        let pid = self.pid
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                let exited = status & 0x7f == 0
                continuation.resume(returning: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            }
        }
    }

    /// The environment a vTPM program runs with: a fixed PATH (swtpm_setup runs swtpm from it).
    static func environment(swtpm: String) -> [String: String] {
        let directory = (swtpm as NSString).deletingLastPathComponent
        return ["PATH": "\(directory):/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"]
    }
}
