/// Why ukeyd refuses to start; the message tells the administrator what to do.
struct DaemonStartError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
