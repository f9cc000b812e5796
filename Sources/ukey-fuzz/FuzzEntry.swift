import Foundation
import UkeyFuzzTargets

// libFuzzer's entry points (the binary is linked with -sanitize=fuzzer, which brings main).
// One binary serves every target; UKEY_FUZZ_TARGET names the one this run fuzzes.

nonisolated(unsafe) private var target: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func initialize(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>
) -> Int32 {
    let name = ProcessInfo.processInfo.environment["UKEY_FUZZ_TARGET"] ?? ""
    guard let chosen = FuzzTarget.named(name) else {
        FileHandle.standardError.write(
            Data(
                "ukey-fuzz: set UKEY_FUZZ_TARGET to one of \(FuzzTarget.all.map(\.name).joined(separator: ", "))\n".utf8
            )
        )
        exit(2)
    }
    target = chosen
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try target!.check(bytes)
    } catch {
        // A property that did not hold is a crash to libFuzzer: it saves the input.
        fatalError("ukey-fuzz \(target!.name): \(error)")
    }
    return 0
}

// SwiftPM links an executable with `main` renamed to `<module>_main`, so libFuzzer's own main is
// not the entry point: this one hands the command line to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@_cdecl("ukey_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return runDriver(&count, &arguments) { data, size in testOneInput(data, size) }
}
