import Foundation
import NIOCore
import Synchronization
import UkeyVarlink

extension VarlinkServer {
    public struct Configuration: Sendable {
        public var socketPath: String
        public var socketMode: mode_t = 0o660
        /// The group that owns the socket (so its members may connect).
        public var socketGroup: String?
        public var maxConnections = 1024
        /// Connections one uid without the admin or hypervisor role may hold at once.
        public var maxConnectionsPerUID = 32
        public var idleTimeout: TimeAmount = .seconds(60)
        public var messageLimit = VarlinkFraming.defaultLimit
        /// A socket handed over by systemd (LISTEN_FDS), used instead of binding `socketPath`.
        public var activatedSocket: Int32?

        public init(socketPath: String) {
            self.socketPath = socketPath
        }
    }

    /// What a reload (SIGHUP) may change for connections accepted after it.
    public struct LiveSettings: Sendable {
        public var roles: RolePolicy
        public var maxConnections: Int
        public var maxConnectionsPerUID: Int
        public init(roles: RolePolicy, maxConnections: Int, maxConnectionsPerUID: Int = 32) {
            self.roles = roles
            self.maxConnections = maxConnections
            self.maxConnectionsPerUID = maxConnectionsPerUID
        }

        var limits: ConnectionAdmission.Limits {
            .init(maxConnections: maxConnections, maxPerUnprivilegedUID: maxConnectionsPerUID)
        }

        /// The settings in force, read by the listener and replaced by a reload.
        final class Current: Sendable {
            private let settings: Mutex<LiveSettings>

            init(_ settings: LiveSettings) {
                self.settings = Mutex(settings)
            }

            var value: LiveSettings {
                get { settings.withLock { $0 } }
                set { settings.withLock { $0 = newValue } }
            }
        }
    }

    /// What a connection's machine allows: how big a message, how many calls in flight; a
    /// client that breaks the protocol is closed.
    var connectionLimits: ConnectionControl.Machine.Configuration {
        .init(
            messageLimit: configuration.messageLimit,
            maxInFlight: ConnectionControl.perConnection,
            protocolErrors: .close
        )
    }
}
