import UkeyCore

extension Policy {
    /// The expected-digest set H of this policy, for the boot chain. Throws the lint problems when
    /// the policy is not fit to load (every component needs a digest).
    public func expectedSet() throws(PolicyError) -> ExpectedSet {
        let problems = PolicyLinter.lint(self, options: .init(requireDigests: true))
        guard problems.isEmpty else { throw PolicyError(problems) }
        let entities = self.entities.map { declared in
            Entity(
                name: declared.name,
                parent: declared.parent,
                kind: declared.kind,
                register: declared.effectiveRegister,
                components: declared.components.map {
                    Component(name: $0.name, expected: $0.digest!, writable: $0.writable)
                }
            )
        }
        do {
            return try ExpectedSet(entities: entities)
        } catch {
            // The linter checks everything ExpectedSet checks; reaching this is a linter bug.
            throw PolicyError([PolicyDiagnostic(location, error.reason)])
        }
    }

    /// Every hash algorithm the policy's digests use: the register banks a boot under it needs.
    public var algorithms: Set<HashAlgorithm> {
        var set: Set<HashAlgorithm> = [.sha256]
        for entity in entities {
            for component in entity.components {
                if let digest = component.digest { set.insert(digest.algorithm) }
            }
        }
        return set
    }
}
