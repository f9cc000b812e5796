/// `io.ukey.Attest`: the TPM's identity for a remote verifier (Keylime): the endorsement key, an
/// attestation key under it that only ukeyd can use, credential activation and quotes. ukeyd holds
/// the TPM, so an agent asks it rather than opening the TPM itself.
public enum Attest {
    public static let interface = APIInterface(
        name: "io.ukey.Attest",
        header: """
            # The TPM's identity for a remote verifier (a Keylime agent's): admin only. On a token
            # whose registers are not on a TPM every method returns io.ukey.Token.Unavailable.
            interface io.ukey.Attest
            """,
        methods: [Identity.self, ActivateCredential.self, BindKey.self, Quote.self],
        errors: ""
    )
}
