import ArgumentParser
import Foundation
import UkeyVirtualCard

/// `ukey-vcard`: the Ukey as a virtual PIV smart card. It connects to pcscd's vpcd reader driver,
/// and every PC/SC client on the host (OpenSC, yubico-piv-tool, ukeyd's pcsc backend) then sees a
/// reader with a PIV card in it. Its keys, PINs and objects live in a sealed store in --state.
@main
struct UkeyVCard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ukey-vcard",
        abstract: "The Ukey as a virtual PIV card on pcscd (through vsmartcard's vpcd driver).",
        discussion: """
            A new card has the factory PIN 123456, PUK 12345678 and the default management key \
            010203040506070801020304050607080102030405060708 (3DES): change all three before use. \
            vpcd listens on every interface: run pcscd and this card in a network namespace of their own.
            """
    )

    @Option(help: "The directory of the card's sealed state (created 0700 if missing).")
    var state: String

    @Option(help: "vpcd's address.")
    var host = "127.0.0.1"

    @Option(help: "vpcd's port: 35963 for its first reader, 35964 for the second.")
    var port: UInt16 = 35963

    @Flag(help: "Write every APDU and response to standard error, secrets (PINs, PUKs, keys) blanked.")
    var trace = false

    @Flag(help: "Stop when vpcd closes the connection, instead of waiting for pcscd to come back.")
    var once = false

    func run() throws {
        // A parent's blocked and ignored signals are inherited (Foundation's Process spawns from threads that
        // block them): unblock the ones that stop a card, so SIGTERM always does.
        var stopping = sigset_t()
        sigemptyset(&stopping)
        for stop in [SIGTERM, SIGINT, SIGHUP] {
            sigaddset(&stopping, stop)
            signal(stop, SIG_DFL)  // and an ignored one (SIG_IGN is inherited too)
        }
        pthread_sigmask(SIG_UNBLOCK, &stopping, nil)
        let (file, saved) = try PIVStateFile.openOrCreate(directory: state)
        let card = PIVCard(state: saved, persist: file.save)
        var announced = false
        while true {
            do {
                let link = try VPCDLink(host: host, port: port)
                if trace { link.trace = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } }
                if !announced {
                    FileHandle.standardOutput.write(
                        Data("ukey-vcard: card \(saved.serial) in vpcd's reader at \(host):\(port)\n".utf8)
                    )
                    announced = true
                }
                card.reset()
                try link.serve(card)
                if once { return }
            } catch {
                if once { throw ValidationError("\(error)") }
                // pcscd is not (yet, or no longer) there: try again shortly, as a card re-inserted.
                usleep(200_000)
            }
        }
    }
}
