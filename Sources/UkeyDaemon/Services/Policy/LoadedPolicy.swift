import Crypto
import Foundation
import UkeyCore
import UkeyPolicy
import UkeyToken
import X509

/// A policy in force: parsed, linted, signature-checked, with its expected set and whitelist index.
struct LoadedPolicy: Sendable {
    let policy: Policy
    let expected: ExpectedSet
    let whitelist: Whitelist
    let text: [UInt8]
    let signature: [UInt8]

    var version: Int { policy.version }

    /// Why a policy is refused; the old one stays in force.
    struct Rejection: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Checks everything architecture.md section 5 asks before a policy may replace the loaded one:
    /// signature by the enrolled signer over the exact bytes, lint-clean, version above `current`.
    /// `allowList` says where to read a referenced list, and where to keep a copy of what was read.
    static func verify(
        text: [UInt8],
        signature: [UInt8],
        signer: PolicySigner,
        above current: Int?,
        allowList: (AllowListReference) throws(Rejection) -> (source: String, copy: String?)
    ) throws(Rejection) -> LoadedPolicy {
        guard signer.isValidSignature(signature, for: text) else {
            switch signer {
            case .p256:
                throw Rejection(
                    "the signature does not verify with the enrolled policy signer's key (ECDSA P-256 over SHA-256)"
                )
            case .sm2:
                throw Rejection(
                    "the signature does not verify with the enrolled policy signer's key (SM2 with SM3 and the ID 1234567812345678: sign with 'openssl dgst -sm3 -sign KEY -sigopt distid:1234567812345678')"
                )
            }
        }
        let policy: Policy
        let expected: ExpectedSet
        do {
            policy = try PolicyParser.parse(bytes: text, file: "policy")
            expected = try policy.expectedSet()
        } catch {
            throw Rejection(
                "the policy does not lint clean: " + error.diagnostics.map(\.description).joined(separator: "; ")
            )
        }
        if let current, policy.version <= current {
            throw Rejection("version \(policy.version) is not above the loaded version \(current) (no rollback)")
        }
        var whitelist = Whitelist(policy)
        for rules in policy.runtime {
            guard let reference = rules.allowList else { continue }
            let (file, copy) = try allowList(reference)
            do {
                // About 90 bytes a line in practice: reserving once spares the index its rehashes.
                let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
                whitelist.reserve(vm: rules.vm, count: size / 90)
                let (digest, _) = try AllowListReader.readRaw(
                    path: file,
                    algorithm: reference.digest.algorithm,
                    copyTo: copy
                ) { path, sha256 in
                    whitelist.add(vm: rules.vm, pathBytes: path, sha256: sha256)
                }
                guard digest == reference.digest else {
                    throw Rejection(
                        "the allow-list \(reference.file) of vm \(rules.vm) has digest \(digest), but the policy pins \(reference.digest)"
                    )
                }
            } catch let error as AllowListError {
                throw Rejection("\(error)")
            } catch let error as Rejection {
                throw error
            } catch {
                throw Rejection("\(error)")
            }
        }
        return LoadedPolicy(policy: policy, expected: expected, whitelist: whitelist, text: text, signature: signature)
    }

    /// The registers a quote covers by default: those the policy's entities extend.
    var registers: [Int] { Array(Set(expected.entities.map(\.register))).sorted() }

    func file(entity: String, component: String) -> String? {
        policy.entities.first { $0.name == entity }?.components.first { $0.name == component }?.file
    }

    func user(_ name: String) -> UserDeclaration? {
        policy.users.first { $0.name == name }
    }
}
