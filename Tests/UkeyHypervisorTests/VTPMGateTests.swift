import Foundation
import Testing
import UkeyHypervisor
import UkeyTesting

/// The guest's TPM at the gates: ukeyd's vTPM for this VM passes (and is to be started), any
/// other swtpm, another VM's vTPM, or the host's own TPM is refused, naming why.
@Suite("the guest's TPM at the gates: only the vTPM ukeyd runs for it")
struct VTPMGateTests {
    static let directory = "/run/ukey/vtpm"

    static func domain(_ tpm: String) -> [UInt8] {
        Array(
            DomainMappingTests.xml.replacingOccurrences(of: "  </devices>", with: "  \(tpm)\n  </devices>").utf8
        )
    }

    static func external(_ path: String) -> String {
        "<tpm model='tpm-crb'><backend type='external'><source type='unix' mode='connect' path='\(path)'/></backend></tpm>"
    }

    static func mapping(_ tpm: String) throws -> DomainMapping {
        try DomainMapping(
            try DomainXML(parsing: domain(tpm)),
            vtpmDirectory: directory,
            chain: { (_: String, _: String?) throws(HypervisorError) -> [BackingChain.Layer] in [] }
        )
    }

    @Test("ukeyd's socket for this VM: the mapping says vtpm; without a TPM it does not")
    func own() throws {
        #expect(try Self.mapping(Self.external("\(Self.directory)/office.sock")).vtpm)
        #expect(try Self.mapping(Self.external("\(Self.directory)/./office.sock")).vtpm)
        #expect(try Self.mapping("").vtpm == false)
    }

    @Test(
        "refused: a swtpm elsewhere, another VM's vTPM, a path out of the directory, the host's TPM passed through, an external TPM without a unix source",
        arguments: [
            (external("/run/swtpm/office.sock"), "a swtpm ukeyd does not run"),
            (external("/run/ukey/vtpm/payroll.sock"), "vTPM"),
            (external("/run/ukey/vtpm/../vtpm-other/office.sock"), "a swtpm ukeyd does not run"),
            (
                "<tpm model='tpm-crb'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>",
                "the host's own TPM"
            ),
            ("<tpm model='tpm-crb'><backend type='external'/></tpm>", "<source type='unix'"),
            (
                "<tpm model='tpm-crb'><backend type='external'><source type='file' path='/run/ukey/vtpm/office.sock'/></backend></tpm>",
                "<source type='unix'"
            ),
        ] as [(String, String)]
    )
    func refused(tpm: String, naming: String) {
        #expect { try Self.mapping(tpm) } throws: { error in
            let named = "\(error)".contains(naming)
            if !named { Issue.record("refused without naming '\(naming)': \(error)") }
            return named
        }
    }

    @Test(
        "ukey-qemu: -tpmdev emulator on ukeyd's socket is the VM's vTPM; the host's TPM, or an emulator without a socket chardev, is refused"
    )
    func qemu() throws {
        let guest = try QemuGateTests.guest([
            "-chardev", "socket,id=chrtpm,path=\(Self.directory)/vm.sock", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
            "-device", "tpm-crb,tpmdev=tpm0",
        ])
        #expect(guest.vtpmSockets == ["\(Self.directory)/vm.sock"])
        let mapping = try DomainMapping(guest, vtpmDirectory: Self.directory) {
            (_: String, _: String?) throws(HypervisorError) -> [BackingChain.Layer] in []
        }
        #expect(mapping.vtpm)
        QemuGateTests.refused(["-tpmdev", "passthrough,id=t,path=/dev/tpm0"], naming: "the host's own TPM")
        QemuGateTests.refused(["-tpmdev", "emulator,id=t,chardev=c"], naming: "no -chardev socket,id=c")
    }
}
