/// Which opens load a program without an exec, so the guard judges them as it judges an exec.
///
/// The kernel holds an exec for the guard, but two other ways run a file's code with no exec of
/// that file: the runtime linker run as a program (`ld.so ./prog` maps `prog` itself), and an
/// interpreter reading a script (`python3 script.py`). fapolicyd's default rules stop both
/// (`pattern=ld_so`, and its rule on files of a language's type). Here, an open is a program
/// load when the process opening it is:
/// - a **runtime linker** run as a program (its executable is the linker itself, which is never
///   so for a program the kernel started through its interpreter), and the file is an ELF
///   object: the program, and then every library it maps, must be on the VM's list;
/// - an **interpreter** (by the name of its executable, version suffix allowed: `python3.11`,
///   `perl5.36.0`), and the file is code by its form: it starts with `#!`, is an ELF object
///   (a native module), or has a source file extension (`.py`, `.pl`, `.rb`,
///   `.js`, `.sh`...); or it is the script the interpreter was started with (the first operand
///   of its command line).
/// What this cannot see, and docs/threat-model.md says so: a script piped to an interpreter's
/// standard input, code given on its command line (`-c`, `-e`), or code read from a file of no
/// such form and run with `exec()`/`eval`.
public struct ProgramLoads: Sendable, Equatable {
    /// Base names of runtime linkers (glibc's and musl's, for x86-64 and others).
    public var loaders: [String]
    /// Base names of interpreters, each matched with an optional version suffix.
    public var interpreters: [String]

    public static let defaultLoaders = [
        "ld-linux-x86-64.so.2", "ld-linux.so.2", "ld-linux-aarch64.so.1", "ld-musl-x86_64.so.1", "ld.so",
    ]
    public static let defaultInterpreters = [
        "python", "python2", "python3", "perl", "ruby", "node", "nodejs", "sh", "bash", "dash", "zsh", "ksh", "mksh",
        "busybox",
        "lua", "luajit", "php", "tclsh", "wish", "Rscript", "gawk", "mawk", "awk", "guile", "pwsh",
    ]

    /// Extensions of source files the interpreters above run.
    public static let codeExtensions: Set<String> = [
        "py", "pyc", "pyo", "pyw", "pth", "pl", "pm", "rb", "js", "mjs", "cjs", "sh", "bash", "zsh", "ksh", "lua",
        "php", "tcl", "r", "awk",
        "scm", "ps1",
    ]

    public init(loaders: [String] = defaultLoaders, interpreters: [String] = defaultInterpreters) {
        self.loaders = loaders
        self.interpreters = interpreters
    }

    public enum Opener: Sendable, Equatable {
        case loader
        case interpreter
    }

    /// What the process whose executable is `executable` (an absolute path, as /proc/PID/exe
    /// reads) is, for the guard; nil for every other program (its opens are let through).
    public func opener(executable: String) -> Opener? {
        let name = executable.split(separator: "/").last.map(String.init) ?? executable
        if loaders.contains(name) { return .loader }
        for interpreter in interpreters where name.hasPrefix(interpreter) {
            let suffix = name.dropFirst(interpreter.count)
            if suffix.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) { return .interpreter }
        }
        return nil
    }

    /// Whether a file is code by its form: `head` is its first bytes (at least 4 when it has
    /// them), `path` the name it was opened by.
    public static func isCode(head: [UInt8], path: String) -> Bool {
        if head.starts(with: [0x23, 0x21]) { return true }  // "#!"
        if isELF(head) { return true }
        let name = path.split(separator: "/").last ?? ""
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return false }
        return codeExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    public static func isELF(_ head: [UInt8]) -> Bool {
        head.starts(with: [0x7F, 0x45, 0x4C, 0x46])
    }

    /// Options of the interpreters above that take the next argument as their value (so it is
    /// not the script), and those after which no script file is run at all.
    static let optionsWithValue: Set<String> = [
        "-W", "-X", "-o", "-O", "-I", "-M", "-r", "-x", "--rcfile", "--init-file", "-f",
    ]
    static let codeOnCommandLine: Set<String> = ["-c", "-e", "-E", "-m", "--eval", "-p", "--print"]

    /// The script an interpreter was started with: the first operand of its command line
    /// (`arguments` without argv[0]), or nil when it runs code from its command line, a module,
    /// or standard input. `-f FILE` (awk) names the script itself.
    public static func scriptArgument(_ arguments: [String]) -> String? {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" { return index + 1 < arguments.count ? arguments[index + 1] : nil }
            if argument == "-f" { return index + 1 < arguments.count ? arguments[index + 1] : nil }
            if codeOnCommandLine.contains(argument) { return nil }
            if argument.hasPrefix("-") && argument.count > 1 {
                index += optionsWithValue.contains(argument) ? 2 : 1
                continue
            }
            return argument == "-" ? nil : argument
        }
        return nil
    }
}
