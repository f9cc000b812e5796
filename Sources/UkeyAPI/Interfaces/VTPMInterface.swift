import UkeyCodec

/// `io.ukey.VTPM`: the vTPM ukeyd runs for a VM whose policy entity says `vtpm: true`. It is
/// started only for a start whose chain is trusted (its state key never leaves ukeyd's sealed
/// store otherwise), its endorsement key is certified by the token's vTPM sub-CA, and it is
/// stopped when the VM is released.
public enum VTPM {
    public static let interface = APIInterface(
        name: "io.ukey.VTPM",
        header: """
            # The vTPMs ukeyd runs for its VMs (swtpm, state encrypted with a key from the
            # sealed store, EK certified by the token's vTPM CA).
            interface io.ukey.VTPM
            """,
        methods: [Start.self, Certify.self, Certificate.self],
        errors: """
            # The vTPM was not started: the VM has none in the policy, its chain is not trusted
            # in this start, or swtpm failed. reason says which.
            error Refused (entity: string, reason: string)
            """
    )

    /// The error every refusal of this interface gives.
    public static func refused(_ entity: String, _ reason: String) -> APIError {
        .other(name: "io.ukey.VTPM.Refused", parameters: ["entity": .string(entity), "reason": .string(reason)])
    }
}
