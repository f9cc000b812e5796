import Foundation

/// Runs `attempt` (which builds a fresh `Process` and runs it) again when the spawn fails with
/// EBADF. Foundation's `Process.run` on Linux collects the parent's open descriptors and has
/// posix_spawn close each one in the child; a descriptor that another thread of the test process
/// closes in between (a TPM connection, a socket of another test) makes the spawn fail with
/// EBADF, although nothing is wrong with the child. The test kit runs many tests at once, so it
/// retries; the failure is never the child's.
func spawnRetryingDescriptorRace<T>(_ attempt: () throws -> T) throws -> T {
    var tries = 0
    while true {
        do {
            return try attempt()
        } catch where tries < 5 && isDescriptorRace(error) {
            tries += 1
            usleep(5_000)
        }
    }
}

private func isDescriptorRace(_ error: any Error) -> Bool {
    let error = error as NSError
    if error.domain == NSPOSIXErrorDomain { return error.code == Int(EBADF) }
    guard let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError else { return false }
    return underlying.domain == NSPOSIXErrorDomain && underlying.code == Int(EBADF)
}
