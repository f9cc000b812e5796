/// Every method ukeyd serves. A method not listed here is `MethodNotFound`, whatever the IDL says
/// (`DaemonAccessTests.idlAndRoutesAgree` checks the two agree).
enum MethodTable {
    static let all: [any ServiceMethod.Type] = [
        VarlinkService.GetInfo.self, VarlinkService.GetInterfaceDescription.self,
        Boot.Measure.self, Boot.Chain.self, Boot.Quote.self, Boot.EventLog.self, Boot.Reset.self, Boot.Release.self,
        Boot.Started.self, Boot.States.self, Boot.AcceptState.self,
        Auth.Login.self, Auth.Logout.self,
        Runtime.CheckExec.self, Runtime.CheckExecBatch.self, Runtime.AllowedFingerprints.self, Runtime.GuardEvent.self,
        Audit.Query.self, Audit.Verify.self,
        Token.Info.self, Token.Certificate.self, Token.Random.self, Token.Sign.self,
        Admin.Initialize.self, Admin.Status.self, Admin.LoadPolicy.self, Admin.AddUser.self,
        Admin.IssueCertificate.self, Admin.UnblockPin.self, Admin.SetMode.self, Admin.Version.self,
    ]
}
