import UkeyPIV
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The card's end of vpcd, pcscd's virtual reader driver: a TCP connection to the port vpcd
/// listens on, each message a 2-byte big-endian length and its bytes. A 1-byte message is a
/// control: 00 power off, 01 power on, 02 reset (none answered), 04 get ATR (answered with the
/// ATR). Anything longer is a command APDU, answered with one response APDU.
public final class VPCDLink {
    public enum Control: UInt8 {
        case powerOff = 0x00
        case powerOn = 0x01
        case reset = 0x02
        case getATR = 0x04
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    private let descriptor: Int32
    /// Where each exchange is written, with PINs, PUKs and keys blanked (`ukey-vcard --trace`).
    public var trace: ((String) -> Void)?

    /// Connects to vpcd at `host:port` (IPv4).
    public init(host: String, port: UInt16) throws(Failure) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw Failure(description: "'\(host)' is not an IPv4 address")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "cannot reach vpcd at \(host):\(port): \(reason)")
        }
        // vpcd writes a message's length and body in two writes: with Nagle and delayed ACKs
        // each APDU would wait ~40 ms for an acknowledgement.
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        descriptor = fd
        quickAck()
    }

    deinit { close(descriptor) }

    /// Serves `card` until vpcd closes the connection (pcscd stopped) or it breaks.
    public func serve(_ card: PIVCard) throws(Failure) {
        while let message = try receive() {
            if message.count == 1 {
                switch Control(rawValue: message[0]) {
                case .getATR: try send(PIVCard.atr)
                case .powerOff, .powerOn, .reset: card.reset()
                case nil: continue  // an unknown control: vpcd expects no answer
                }
                continue
            }
            let response = card.respond(to: message)
            trace?("> \(Self.redacted(message))\n< \(Self.hex(response))")
            try send(response)
        }
    }

    /// One message, or nil at an orderly close.
    private func receive() throws(Failure) -> [UInt8]? {
        guard let header = try read(2) else { return nil }
        let length = Int(header[0]) << 8 | Int(header[1])
        guard length > 0 else { throw Failure(description: "vpcd sent an empty message") }
        guard let body = try read(length) else {
            throw Failure(description: "vpcd closed the connection inside a message")
        }
        return body
    }

    private func read(_ count: Int) throws(Failure) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = buffer.withUnsafeMutableBytes {
                recv(descriptor, $0.baseAddress.map { $0 + filled }, count - filled, 0)
            }
            // Quick ACKs are turned off again by the kernel after a while: re-arm after every read.
            quickAck()
            if got == 0 {
                if filled == 0 { return nil }
                throw Failure(description: "vpcd closed the connection inside a message")
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "reading from vpcd: \(String(cString: strerror(errno)))")
            }
            filled += got
        }
        return buffer
    }

    private func send(_ body: [UInt8]) throws(Failure) {
        guard body.count <= 0xFFFF else {
            throw Failure(description: "a response of \(body.count) bytes does not fit a vpcd message")
        }
        let message = [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        var sent = 0
        while sent < message.count {
            let wrote = message.withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress.map { $0 + sent }, message.count - sent, Int32(MSG_NOSIGNAL))
            }
            if wrote < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "writing to vpcd: \(String(cString: strerror(errno)))")
            }
            sent += wrote
        }
    }

    /// A command as hex, its data blanked where it carries a secret (VERIFY, CHANGE REFERENCE
    /// DATA, RESET RETRY COUNTER, SET MANAGEMENT KEY).
    static func redacted(_ command: [UInt8]) -> String {
        guard command.count > 5, [0x20, 0x24, 0x2C, 0xFF].contains(command[1]) else { return hex(command) }
        return hex(Array(command.prefix(5))) + " (\(command.count - 5) secret bytes)"
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    private func quickAck() {
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}
