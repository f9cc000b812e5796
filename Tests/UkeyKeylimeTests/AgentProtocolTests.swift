import Foundation
import Testing
import UkeyCore
import UkeyKeylime
import UkeyTesting

@Suite("Keylime's agent protocol: requests, the registrar's challenge, the answer")
struct AgentProtocolTests {
    @Test("the requests Keylime 7.14.3 makes are read; anything else is refused with a status and a reason")
    func requests() throws {
        #expect(try AgentRequest.parse(method: "GET", target: "/version") == .version)
        #expect(
            try AgentRequest.parse(method: "GET", target: "/v2.6/quotes/identity?nonce=AbC123xyz0AbC123xyz0")
                == .identityQuote(version: "2.6", nonce: "AbC123xyz0AbC123xyz0")
        )
        #expect(
            try AgentRequest.parse(
                method: "GET",
                target: "/v2.2/quotes/integrity?nonce=n0nce&mask=0xfbff&partial=1&ima_ml_entry=0"
            )
                == .integrityQuote(
                    version: "2.2",
                    nonce: "n0nce",
                    pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15],
                    partial: true
                )
        )
        let refused: [(String, String, Int, String)] = [
            ("POST", "/v2.2/keys/ukey", 405, "only GET"),
            ("GET", "/v9.9/quotes/identity?nonce=a", 400, "API version not supported"),
            ("GET", "/v2.2/quotes/identity", 400, "nonce"),
            ("GET", "/v2.2/quotes/identity?nonce=a%20b", 400, "letters and digits"),
            ("GET", "/v2.2/quotes/identity?nonce=" + String(repeating: "a", count: 65), 400, "nonce"),
            ("GET", "/v2.2/quotes/identity?nonce=a&nonce=b", 400, "twice"),
            ("GET", "/v2.2/quotes/identity?nonce=a&extra=1", 400, "unknown parameter extra"),
            ("GET", "/v2.2/quotes/integrity?nonce=a&mask=0x1000000&partial=1", 400, "mask"),
            ("GET", "/v2.2/quotes/integrity?nonce=a&mask=0xff&partial=2", 400, "partial"),
            ("GET", "/v2.2/keys/verify?challenge=x", 404, "no such endpoint"),
            ("GET", "/" + String(repeating: "a", count: 3000), 414, "over"),
        ]
        for (method, target, status, reason) in refused {
            #expect {
                try AgentRequest.parse(method: method, target: target)
            } throws: { error in
                guard let refusal = error as? AgentRequest.Refusal else { return false }
                return refusal.status == status && refusal.reason.contains(reason)
            }
        }
    }

    @Test("the challenge splits as tpm2-tools writes it; the answer equals openssl's HMAC-SHA384 over the uuid")
    func challengeAndAnswer() throws {
        let blob: [UInt8] = [0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1, 0, 4, 0, 2, 0x61, 0x62, 0, 3, 0x78, 0x79, 0x7A]
        let challenge = try CredentialChallenge(blob: blob)
        #expect(challenge.credential == [0, 4, 0, 2, 0x61, 0x62])
        #expect(challenge.encryptedSecret == [0, 3, 0x78, 0x79, 0x7A])
        for bad in [
            Array(blob.dropLast()), blob + [0], [0xBA, 0xDC, 0xC0, 0xDF] + blob.dropFirst(4), Array(blob.prefix(11)),
        ] {
            #expect(throws: CredentialChallenge.Malformed.self) { try CredentialChallenge(blob: bad) }
        }
        let secret = Array("S3cretCredentialFromTheRegistrar".utf8)
        let uuid = "d432fbb3-d2f1-4a97-9ef7-75bd81c0e2e0"
        let key = Data(secret).base64EncodedString()
        let openssl = try ExternalTool("openssl").run(["dgst", "-sha384", "-hmac", key, "-r"], stdin: Data(uuid.utf8))
        #expect(openssl.status == 0, "\(openssl.stderr)")
        #expect(CredentialChallenge.authTag(secret: secret, uuid: uuid) == String(openssl.stdout.prefix(96)))
    }

    @Test("the quote is r, then base64 of each part joined by ':', and the body is Keylime's envelope")
    func quoteReply() throws {
        let reply = QuoteReply(
            attest: [1, 2, 3],
            signature: [4, 5],
            pcrValues: [6],
            publicKeyPEM: "PEM",
            eventLog: [7, 8]
        )
        #expect(
            reply.quote == "r" + Data([1, 2, 3]).base64EncodedString() + ":" + Data([4, 5]).base64EncodedString() + ":"
                + Data([6]).base64EncodedString()
        )
        let body = try JSONSerialization.jsonObject(with: Data(reply.body)) as! [String: Any]
        let results = body["results"] as! [String: Any]
        #expect(body["code"] as? Int == 200)
        #expect(results["sign_alg"] as? String == "rsassa" && results["pubkey"] as? String == "PEM")
        #expect(results["mb_measurement_list"] as? String == Data([7, 8]).base64EncodedString())
    }
}

@Suite("the boot log sent: the firmware's, then ukey's")
struct BootLogMergeTests {
    @Test(
        "a firmware log written apart from ukey keeps its bytes; ukey's events follow; tpm2_eventlog reads the whole and its replay is both logs' together"
    )
    func merge() throws {
        let work = try TemporaryDirectory("ukey-merge")
        let made = try ExternalTool.run(
            "/usr/bin/python3",
            [PackagePaths.root() + "/scripts/firmware-log.py", work.file("firmware.bin")]
        )
        #expect(made.status == 0, "\(made.stderr)")
        let firmware = try [UInt8](Data(contentsOf: URL(fileURLWithPath: work.file("firmware.bin"))))
        var ours = EventLog(banks: [.sha256])
        let digest = try Digest(parsing: "sha256:" + String(repeating: "ab", count: 32))
        ours.appendMeasurement(register: 14, digest: digest, description: "vmm/kernel")
        let merged = try BootLogMerge.merge(firmware: firmware, ukey: ours.serialized())
        #expect(Array(merged.prefix(firmware.count)) == firmware)
        let parsed = try EventLog(parsing: merged)
        #expect(parsed.events.count == (try EventLog(parsing: firmware)).events.count + 1)
        #expect(parsed.events.last?.registerIndex == 14)
        try Data(merged).write(to: URL(fileURLWithPath: work.file("merged.bin")))
        let read = try ExternalTool("tpm2_eventlog").run([work.file("merged.bin")])
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout.contains("vmm/kernel"))
        // A firmware bank ukey does not extend is refused, naming it; garbage is refused.
        var wide = EventLog(banks: [.sha256, .sha384])
        wide.appendMeasurement(register: 0, digest: digest, description: "firmware")
        #expect(throws: BootLogMerge.Refusal.self) {
            try BootLogMerge.merge(firmware: wide.serialized(), ukey: ours.serialized())
        }
        #expect(throws: BootLogMerge.Refusal.self) {
            try BootLogMerge.merge(firmware: [1, 2, 3], ukey: ours.serialized())
        }
    }
}
