import UkeyPIV
import Crypto

/// The asymmetric slots and the data objects: GENERATE ASYMMETRIC KEY PAIR, GENERAL AUTHENTICATE
/// (ECDSA P-256 signatures and ECDH), GET DATA and PUT DATA.
extension PIVCard {
    /// PIV's algorithm identifier for ECC P-256 (SP 800-78-4 table 6-2).
    static let p256 = 0x11 as UInt8

    func generalAuthenticate(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        guard let outer = try? TLV.parse(command.data), outer.count == 1, outer[0].tag == 0x7C,
            let template = try? TLV.parse(outer[0].value)
        else { return ([], .wrongData) }
        if command.p2 == 0x9B { return managementAuthenticate(command, template) }
        guard let slot = PIVSlot(rawValue: command.p2) else { return ([], .referenceNotFound) }
        guard command.p1 == Self.p256 else { return ([], .incorrectP1P2) }
        guard let raw = state.keys[slot] else { return ([], .referenceNotFound) }
        guard template.value(0x82) == [] else { return ([], .wrongData) }
        guard !slot.needsPIN || pinVerified else { return ([], .securityNotSatisfied) }
        // PIN-always: the signature key's PIN is spent by one signature.
        if slot.pinAlways { pinVerified = false }
        if let hash = template.value(0x81) {
            guard let digest = PrehashedDigest(hash), let key = try? P256.Signing.PrivateKey(rawRepresentation: raw),
                let signature = try? key.signature(for: digest)
            else { return ([], .wrongData) }
            return (dynamicTemplate(0x82, Array(signature.derRepresentation)), .ok)
        }
        if let point = template.value(0x85) {
            guard let key = try? P256.KeyAgreement.PrivateKey(rawRepresentation: raw),
                let peer = try? P256.KeyAgreement.PublicKey(x963Representation: point),
                let shared = try? key.sharedSecretFromKeyAgreement(with: peer)
            else { return ([], .wrongData) }
            return (dynamicTemplate(0x82, shared.withUnsafeBytes { Array($0) }), .ok)
        }
        return ([], .wrongData)
    }

    /// A new P-256 key in a slot, its public point in the answer. The slot's certificate stays
    /// until replaced: the card, like a real one, does not know whether it still matches.
    func generateKeyPair(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        guard command.p1 == 0x00, let slot = PIVSlot(rawValue: command.p2) else { return ([], .incorrectP1P2) }
        guard managementAuthenticated else { return ([], .securityNotSatisfied) }
        guard let outer = try? TLV.parse(command.data), outer.count == 1, outer[0].tag == 0xAC,
            let control = try? TLV.parse(outer[0].value), let algorithm = control.value(0x80)
        else { return ([], .wrongData) }
        guard algorithm == [Self.p256] else { return ([], .wrongData) }
        let key = P256.Signing.PrivateKey()
        var next = state
        next.keys[slot] = Array(key.rawRepresentation)
        guard commit(next) else { return ([], .memoryFailure) }
        return (TLV.encode(0x7F49, TLV.encode(0x86, Array(key.publicKey.x963Representation))), .ok)
    }

    func getData(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        guard command.p1 == 0x3F, command.p2 == 0xFF else { return ([], .incorrectP1P2) }
        guard let request = try? TLV.parse(command.data), request.count == 1, request[0].tag == 0x5C,
            (1...3).contains(request[0].value.count)
        else { return ([], .wrongData) }
        let tag = request[0].value.reduce(0) { $0 << 8 | Int($1) }
        if tag == PIVObjects.discovery { return (PIVObjects.discoveryObject, .ok) }
        if PIVObjects.pinProtected.contains(tag) && !pinVerified { return ([], .securityNotSatisfied) }
        let content: [UInt8]? =
            state.objects[tag]
            ?? (tag == PIVObjects.chuid ? PIVObjects.chuid(guid: state.guid) : nil)
            ?? (tag == PIVObjects.capabilityContainer
                ? PIVObjects.capabilityContainer(serial: state.serial, guid: state.guid) : nil)
        guard let content else { return ([], .notFound) }
        return (TLV.encode(0x53, content), .ok)
    }

    func putData(_ command: CommandAPDU) -> ([UInt8], StatusWord) {
        guard command.p1 == 0x3F, command.p2 == 0xFF else { return ([], .incorrectP1P2) }
        guard managementAuthenticated else { return ([], .securityNotSatisfied) }
        guard let elements = try? TLV.parse(command.data), elements.count == 2, elements[0].tag == 0x5C,
            elements[1].tag == 0x53,
            (1...3).contains(elements[0].value.count)
        else { return ([], .wrongData) }
        let tag = elements[0].value.reduce(0) { $0 << 8 | Int($1) }
        guard PIVObjects.writable.contains(tag) else { return ([], .wrongData) }
        guard elements[1].value.count <= PIVCardState.maxObjectLength else { return ([], .notEnoughMemory) }
        var next = state
        // An empty object deletes it (yubico-piv-tool -a delete-certificate writes one).
        next.objects[tag] = elements[1].value.isEmpty ? nil : elements[1].value
        return commit(next) ? ([], .ok) : ([], .memoryFailure)
    }
}
