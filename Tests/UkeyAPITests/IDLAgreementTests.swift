import Testing
import UkeyAPI
import UkeyCodec

@Suite("the IDL ukeyd serves and the API's types agree, field by field")
struct IDLAgreementTests {
    @Test("every interface ukeyd serves has a description naming itself, in GetInfo's order")
    func interfaces() throws {
        #expect(
            APIInterface.all.map(\.name) == [
                "org.varlink.service", "io.ukey.Boot", "io.ukey.Auth", "io.ukey.Runtime", "io.ukey.Token",
                "io.ukey.Audit", "io.ukey.Admin", "io.ukey.Attest", "io.ukey.VTPM",
            ]
        )
        for interface in APIInterface.all {
            #expect(try IDLReader(interface.description).interface == interface.name)
        }
    }

    @Test("each method's parameters and reply in the IDL are its Request's and Reply's fields, types and optionality")
    func everyField() throws {
        var compared = 0
        for interface in APIInterface.all {
            let idl = try IDLReader(interface.description)
            // Every method line of the IDL is a method of the API, and the other way round.
            #expect(
                Set(idl.methods.keys)
                    == Set(interface.methods.map { $0.name.split(separator: ".").last.map(String.init)! })
            )
            for method in interface.methods {
                let short = String(method.name.split(separator: ".").last!)
                #expect(method.name == interface.name + "." + short)
                guard let described = idl.methods[short] else {
                    Issue.record("\(method.name) is not in its interface's description")
                    continue
                }
                let (request, reply) = try shapes(of: method)
                #expect(
                    request == described.parameters,
                    "\(method.name) parameters: IDL \(described.parameters), Swift \(request)"
                )
                #expect(reply == described.reply, "\(method.name) reply: IDL \(described.reply), Swift \(reply)")
                compared += 1
            }
        }
        #expect(compared == APIInterface.allMethods.count)
        #expect(compared >= 31)
    }

    @Test("the comparison fails when a field differs (a field renamed, made optional, retyped)")
    func comparisonCanFail() throws {
        let idl = try IDLReader(
            """
            interface io.ukey.Example
            type Pair (a: string, b: ?int)
            method M(entity: string, pairs: []Pair, map: [string]string, free: []object) -> (ok: bool)
            """
        )
        let parameters = try #require(idl.methods["M"]).parameters
        let pair = Shape.structure([
            "a": .init(shape: .string, optional: false), "b": .init(shape: .int, optional: true),
        ])
        let right = Shape.structure([
            "entity": .init(shape: .string, optional: false), "pairs": .init(shape: .array(pair), optional: false),
            "map": .init(shape: .map(.string), optional: false), "free": .init(shape: .array(.object), optional: false),
        ])
        #expect(parameters == right)
        var wrong = right
        if case .structure(var fields) = wrong {
            fields["entity"]?.optional = true
            wrong = .structure(fields)
        }
        #expect(parameters != wrong)
        #expect(try ShapeProbe.shape(of: Boot.Measure.Request.self) != right)
    }

    private func shapes<M: APIMethod>(of method: M.Type) throws -> (Shape, Shape) {
        (try ShapeProbe.shape(of: M.Request.self), try ShapeProbe.shape(of: M.Reply.self))
    }
}
