import Crypto
import UkeyCore
import UkeyToken
import X509

/// The demo's policy signer (`keys/demo/`): its private key is in the repository for anyone to
/// read, so a token that trusts it trusts anyone. ukeyd knows it by its public key alone (the
/// daemon never needs the repository) and refuses it unless started with `--allow-demo-keys`:
/// at `Admin.Initialize`, at every policy load, and at start on a token that enrolled it.
enum DemoKeys {
    /// SHA-256 of the demo signer's public key (X9.63 form), `keys/demo/policy-signer.TEST-ONLY.pem`.
    static let policySignerFingerprint = "318298c8454f84aa52ad16e80f0027e85e1f99f172f9b96d2d5b8ea7a287a6f0"

    static func isDemoPolicySigner(_ signer: PolicySigner) -> Bool {
        guard case .p256(let certificate) = signer, let key = P256.Signing.PublicKey(certificate.publicKey) else {
            return false
        }
        return Hex.encode(Array(SHA256.hash(data: key.x963Representation))) == policySignerFingerprint
    }

    static let refusal =
        "the policy signer is ukey's demo key (keys/demo/), whose private key anyone can read: a token that trusts it trusts anyone. Start ukeyd with --allow-demo-keys for a demo or a test, never in production"
}
