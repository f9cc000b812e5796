// swift-tools-version: 6.2
// The module graph is the architecture (docs/architecture.md section 2): UkeyCore knows no I/O and
// imports nothing of ours but the codec and UkeySM (SM3 is one of its digest algorithms, and
// UkeySM computes it through the system's libcrypto, no I/O either); the executables are the only
// composition roots.
import Foundation
import PackageDescription

/// Every target of ours builds in Swift 6 mode with all warnings as errors.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "ukey",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ukeyctl", targets: ["ukeyctl"]),
        .executable(name: "ukeyd", targets: ["ukeyd"]),
        .executable(name: "ukey-libvirt-hook", targets: ["ukey-libvirt-hook"]),
        .executable(name: "ukey-qemu", targets: ["ukey-qemu"]),
        .executable(name: "ukey-vcard", targets: ["ukey-vcard"]),
        .executable(name: "ukey-guard", targets: ["ukey-guard"]),
        .executable(name: "ukey-keylime-agent", targets: ["ukey-keylime-agent"]),
        .executable(name: "ukey-vtpm-certs", targets: ["ukey-vtpm-certs"]),
        .library(name: "UkeyCore", targets: ["UkeyCore"]),
        .library(name: "UkeyPolicy", targets: ["UkeyPolicy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // The one strict JSON reader and writer, and the one bounds-checked byte reader: below the
        // protocol, the audit log, the boot journal and every binary parser. Also the byte forms
        // both ends of a socket share (hex, exec fingerprints).
        .target(name: "UkeyCodec", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        // The API: per method its name, role, typed request and reply, IDL text and audit
        // record; shared by ukeyd and every client, so a method's shape is written once.
        .target(name: "UkeyAPI", dependencies: ["UkeyCodec"], swiftSettings: strict),
        // ukeyd.toml's strict TOML subset: a leaf, so the gates read ukeyd's settings without
        // linking the daemon.
        .target(name: "UkeyConfig", dependencies: [], swiftSettings: strict),
        // The serial executor for actors whose work blocks a thread (a device, write + fsync), so
        // it never holds one of the cooperative pool's threads. A leaf: the token backends, the
        // audit log and the daemon share it.
        .target(name: "UkeyConcurrency", dependencies: [], swiftSettings: strict),
        .target(
            name: "UkeyCore",
            dependencies: ["UkeyCodec", "UkeySM", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "UkeyPolicy",
            dependencies: ["UkeyCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(
            name: "UkeyStore",
            dependencies: ["UkeyCodec", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // The token roles as protocols, and the soft token (which keeps its state in UkeyStore).
        .target(
            name: "UkeyToken",
            dependencies: [
                "UkeyCore", "UkeyStore", "UkeyCodec", "UkeySM", "UkeyConcurrency",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
        // The tamper-evident audit log: hash-chained records, signed checkpoints, group commit.
        .target(
            name: "UkeyAudit",
            dependencies: ["UkeyAPI", "UkeyCore", "UkeyCodec", "UkeyConcurrency", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // tpm2-tss from Debian's libtss2-dev (esys, tctildr, rc, mu), and the TPM backend over it.
        .systemLibrary(name: "CTSS2", pkgConfig: "tss2-esys", providers: [.apt(["libtss2-dev"])]),
        .target(
            name: "UkeyTPM",
            dependencies: [
                "CTSS2", "UkeyCore", "UkeyStore", "UkeyToken", "UkeyConcurrency",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
        // The system's libcrypto (libssl-dev), for what swift-crypto lacks: PIV's 3DES management key.
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // PIV's wire, shared by the card and its clients: APDUs, BER-TLV, slots, the management
        // key's block cipher.
        .target(name: "UkeyPIV", dependencies: ["CLibCrypto"], swiftSettings: strict),
        .target(name: "UkeySM", dependencies: ["CLibCrypto", .product(name: "SwiftASN1", package: "swift-asn1")], swiftSettings: strict),
        // The Ukey as a PIV card: the card's state machine and sealed state, and the card's end of
        // pcscd's vpcd driver. Used by ukey-vcard; no PC/SC client code.
        .target(
            name: "UkeyVirtualCard",
            dependencies: ["UkeyPIV", "UkeyStore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ukey-vcard",
            dependencies: ["UkeyVirtualCard", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        // pcsc-lite (libpcsclite-dev), and the PIV client over it: real cards and ukey-vcard alike.
        .systemLibrary(name: "CPCSC", providers: [.apt(["libpcsclite-dev"])]),
        .target(
            name: "UkeyPCSC",
            dependencies: [
                "CPCSC", "UkeyPIV", "UkeyToken", "UkeyStore", "UkeyCore", "UkeyConcurrency",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
        // The kernel's fanotify (glibc headers), and the exec guard over it: execs held until
        // ukeyd's whitelist answers.
        .systemLibrary(name: "CFanotify"),
        .target(
            name: "UkeyGuard",
            dependencies: ["CFanotify", "UkeyAPI", "UkeyClient", "UkeyVarlink", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ukey-guard",
            dependencies: ["UkeyGuard", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        // Keylime's agent protocol, pure: the requests a verifier and tenant make (parsed and
        // bounded), the quote reply's form, the registrar's challenge and its answer.
        .target(
            name: "UkeyKeylime",
            dependencies: ["UkeyCodec", "UkeyCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // The Keylime agent: ukeyd's TPM identity and boot log served over HTTPS with mTLS.
        .executableTarget(
            name: "ukey-keylime-agent",
            dependencies: [
                "UkeyKeylime", "UkeyAPI", "UkeyClient", "UkeyCodec",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
        // The varlink protocol: framing, messages, errors, interface descriptions. Bytes only.
        .target(name: "UkeyVarlink", dependencies: ["UkeyCodec"], swiftSettings: strict),
        // The daemon: socket server, peer credentials, roles, dispatcher, services. It depends on
        // the token protocols only; ukeyd's main picks the backend.
        .target(
            name: "UkeyDaemon",
            dependencies: [
                "UkeyAPI", "UkeyCore", "UkeyPolicy", "UkeyStore", "UkeyToken", "UkeyVarlink", "UkeyAudit", "UkeyCodec", "UkeyConfig", "UkeyConcurrency", "CFanotify",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        // The hypervisor side, pure: a libvirt domain (or qemu command line) mapped to what ukeyd
        // is asked, and the qcow2 backing chain read from the images' headers.
        .target(name: "UkeyHypervisor", dependencies: [], swiftSettings: strict),
        // A blocking varlink client for ukeyctl, the gates, the guard and the tests: typed calls
        // of the API's methods.
        .target(name: "UkeyClient", dependencies: ["UkeyVarlink", "UkeyAPI"], swiftSettings: strict),
        // The daemon's composition root: picks the token backend.
        .executableTarget(
            name: "ukeyd",
            dependencies: [
                "UkeyDaemon", "UkeyConfig", "UkeyStore", "UkeyToken", "UkeyTPM", "UkeyPCSC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ukeyctl",
            dependencies: [
                "UkeyAPI", "UkeyCore", "UkeyPolicy", "UkeyToken", "UkeyClient", "UkeyVarlink", "UkeyAudit", "UkeyHypervisor", "UkeyCodec", "UkeyPCSC", "UkeyPIV", "UkeySM",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // The gate the enforcement points share: a guest's files measured through ukeyd.
        .target(
            name: "UkeyGuestGate",
            dependencies: ["UkeyHypervisor", "UkeyAPI", "UkeyClient", "UkeyVarlink", "UkeyConfig", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // libvirt's qemu hook: a guest starts only when ukeyd vouches for everything it loads.
        .executableTarget(
            name: "ukey-libvirt-hook",
            dependencies: ["UkeyHypervisor", "UkeyGuestGate", "UkeyClient", "UkeyVarlink"],
            swiftSettings: strict
        ),
        // swtpm_setup's certificate tool: asks ukeyd's vTPM CA for a vTPM's EK certificate.
        .executableTarget(name: "ukey-vtpm-certs", dependencies: ["UkeyAPI", "UkeyClient", "UkeyVarlink"], swiftSettings: strict),
        // The same gate for hosts without libvirt: measures, then execs the real qemu.
        .executableTarget(name: "ukey-qemu", dependencies: ["UkeyHypervisor", "UkeyGuestGate"], swiftSettings: strict),
        // `make bench`: rates against peers measured in the same run.
        .executableTarget(
            name: "ukey-bench",
            dependencies: [
                "UkeyAPI", "UkeyCore", "UkeyPolicy", "UkeyToken", "UkeyClient", "UkeyVarlink", "UkeyAudit", "UkeyTPM", "UkeyPCSC", "UkeyPIV", "UkeySM",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        // A child process for the crash tests (kill -9 loops); not installed.
        .executableTarget(
            name: "ukey-testhelper",
            dependencies: ["UkeyStore", "UkeyToken", "UkeyFuzzTargets", "UkeySM", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // The test kit: real peers (external tools), temporary directories; later the test daemon.
        // Every parser of untrusted bytes with the property its fuzzer checks (make fuzz), and the
        // seeds of its corpus; the regression suite runs them over Tests/Fuzz/Corpus.
        .target(
            name: "UkeyFuzzTargets",
            dependencies: [
                "UkeyAPI", "UkeyCodec", "UkeyCore", "UkeyPolicy", "UkeyStore", "UkeyToken", "UkeyAudit", "UkeyVarlink", "UkeyDaemon", "UkeyConfig", "UkeyPIV", "UkeyVirtualCard", "UkeySM",
                "UkeyHypervisor", "UkeyGuard", "UkeyKeylime",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "UkeyFuzzTests", dependencies: ["UkeyFuzzTargets", "UkeyTesting"], swiftSettings: strict),
        .target(name: "UkeyTesting", dependencies: ["UkeyClient", "UkeyVarlink"], swiftSettings: strict),
        .testTarget(name: "UkeyAPITests", dependencies: ["UkeyAPI", "UkeyClient", "UkeyTesting"], swiftSettings: strict),
        .testTarget(name: "UkeyCoreTests", dependencies: ["UkeyCore", "UkeyTesting"], swiftSettings: strict),
        .testTarget(
            name: "UkeyStoreTests",
            dependencies: ["UkeyStore", "UkeyTesting", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "UkeyTokenTests",
            dependencies: [
                "UkeyToken", "UkeyCore", "UkeySM", "UkeyTesting", "UkeyCodec",
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "UkeyPolicyTests", dependencies: ["UkeyPolicy", "UkeyCore", "UkeyTesting"], swiftSettings: strict),
        .testTarget(
            name: "UkeyVarlinkTests",
            dependencies: ["UkeyVarlink", "UkeyTesting", "UkeyFuzzTargets"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "UkeyDaemonTests",
            dependencies: [
                "UkeyAPI", "UkeyCore", "UkeyToken", "UkeyTesting", "UkeyClient", "UkeyVarlink", "UkeyDaemon", "UkeyConfig", "UkeyAudit", "UkeyTPM", "UkeySM",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "UkeyAuditTests",
            dependencies: ["UkeyAudit", "UkeyCore", "UkeyTesting", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "UkeyTPMTests",
            dependencies: ["UkeyTPM", "UkeyStore", "UkeyTesting", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "UkeyKeylimeTests",
            dependencies: ["UkeyKeylime", "UkeyCore", "UkeyTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "UkeyVirtualCardTests",
            dependencies: ["UkeyPIV", "UkeyVirtualCard", "UkeyPCSC", "UkeyCore", "UkeyTesting", .product(name: "Crypto", package: "swift-crypto"), .product(name: "X509", package: "swift-certificates")],
            swiftSettings: strict
        ),
        .testTarget(name: "UkeySMTests", dependencies: ["UkeySM", "UkeyTesting"], swiftSettings: strict),
        .testTarget(name: "UkeyHypervisorTests", dependencies: ["UkeyHypervisor", "UkeyTesting"], swiftSettings: strict),
        .testTarget(name: "UkeyGuardTests", dependencies: ["UkeyGuard", "UkeyTesting"], swiftSettings: strict),
        .testTarget(
            name: "UkeyctlTests",
            dependencies: ["UkeyPolicy", "UkeyCore", "UkeyToken", "UkeyAudit", "UkeySM", "UkeyTesting"],
            swiftSettings: strict
        ),
    ]
)

// `make fuzz` builds the libFuzzer driver with UKEY_FUZZ=1 (and -sanitize=fuzzer,address): it has
// no main of its own, so it is not part of an ordinary build.
if ProcessInfo.processInfo.environment["UKEY_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "ukey-fuzz", dependencies: ["UkeyFuzzTargets"], swiftSettings: strict))
    package.products.append(.executable(name: "ukey-fuzz", targets: ["ukey-fuzz"]))
}
