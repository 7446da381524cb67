// dcnet-fuzz: mutates valid inputs of every format dcnet-dist reads and runs the real readers on
// them in this process. An input must be refused with an error or give a valid result; a trap, a
// hang (the watchdog) or an allocation past the address-space limit ends the process, and the
// case left on disk (current-case.txt names it) is the reproduction. scripts/fuzz runs it.
import DCNetFormats
import DCNetRandom
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var seconds: Double?
    var cases: Int?
    var seed: UInt64 = 1
    var formats: [String] = []
    var directory = ".build/fuzz"
    var caseTimeout: Double = 5
    var memoryGiB = 4
    var only: Int?
    var replay: String?
    var verbose = false

    static let usage = """
        usage: dcnet-fuzz [--seconds S | --cases N] [--seed S] [--format F[,F...]] [--dir DIR]
                          [--case-timeout S] [--memory-gib G] [--case K] [--replay FILE] [--verbose]
          --seconds S   run for S seconds in all, split evenly across the formats
          --cases N     run N cases per format (default 300 without --seconds)
          --case K      run only case K (with --seed and one --format): reproduces a saved case
          --replay FILE run the reader of the one --format on FILE
        """

    static func parse(_ args: [String]) -> Options {
        var o = Options()
        var i = 0
        func value() -> String {
            i += 1
            guard i < args.count else { fail("missing value for \(args[i - 1])") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--seconds": o.seconds = number(Double(value()), "--seconds takes a number")
            case "--cases": o.cases = number(Int(value()), "--cases takes an integer")
            case "--seed": o.seed = number(UInt64(value()), "--seed takes an unsigned integer")
            case "--format": o.formats += value().split(separator: ",").map(String.init)
            case "--dir": o.directory = value()
            case "--case-timeout": o.caseTimeout = number(Double(value()), "--case-timeout takes a number")
            case "--memory-gib": o.memoryGiB = number(Int(value()), "--memory-gib takes an integer")
            case "--case": o.only = number(Int(value()), "--case takes an integer")
            case "--replay": o.replay = value()
            case "--verbose": o.verbose = true
            case "-h", "--help": print(usage); exit(0)
            default: fail("unknown argument \(args[i])")
            }
            i += 1
        }
        return o
    }
}

func number<T>(_ value: T?, _ message: String) -> T {
    guard let value else { fail(message) }
    return value
}

func fail(_ message: String) -> Never {
    FileSink.standardError.writeIgnoringErrors("dcnet-fuzz: \(message)\n\(Options.usage)\n")
    exit(2)
}

/// Ends the process when one case runs longer than the bound: a hang is a failure, and the
/// case on disk is the reproduction.
final class Watchdog: @unchecked Sendable {
    private let lock = NSLock()
    private var started: Double?
    private var label = ""
    let limit: Double

    init(limit: Double) {
        self.limit = limit
        let thread = Thread { [unowned self] in
            while true {
                Thread.sleep(forTimeInterval: 0.25)
                lock.lock()
                let over = started.map { Self.now() - $0 > limit } ?? false
                let what = label
                lock.unlock()
                if over {
                    FileSink.standardError.writeIgnoringErrors("dcnet-fuzz: HANG: \(what) ran over \(limit) s\n")
                    _exit(3)
                }
            }
        }
        thread.start()
    }

    static func now() -> Double { ProcessInfo.processInfo.systemUptime }
    func begin(_ what: String) { lock.lock(); started = Self.now(); label = what; lock.unlock() }
    func end() { lock.lock(); started = nil; lock.unlock() }
}

/// Caps the address space, so a runaway allocation fails (and traps) instead of swapping.
func limitMemory(gib: Int) {
    var limit = rlimit()
    limit.rlim_cur = rlim_t(gib) << 30
    limit.rlim_max = rlim_t(gib) << 30
    if setrlimit(Int32(RLIMIT_AS.rawValue), &limit) != 0 {
        FileSink.standardError.writeIgnoringErrors("dcnet-fuzz: warning: cannot limit the address space\n")
    }
}

struct Tally {
    var cases = 0, accepted = 0, rejected = 0, failures = 0
    var seconds = 0.0, slowest = 0.0
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
let root = URL(fileURLWithPath: options.directory).standardizedFileURL.path
let context: FuzzContext
do {
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    context = try FuzzContext(root: root)
} catch {
    fail("cannot make the seed inputs in \(root): \(error)")
}
// After the seeds: making them (the gzip bomb) needs more memory than any case may take.
limitMemory(gib: options.memoryGiB)
let all = context.formats
let selected =
    options.formats.isEmpty
    ? all
    : options.formats.map { name in
        guard let format = all.first(where: { $0.name == name }) else {
            fail("unknown format \(name); formats: \(all.map(\.name).joined(separator: ", "))")
        }
        return format
    }
let watchdog = Watchdog(limit: options.caseTimeout)
let currentCase = root + "/current-case.txt"

/// Writes the input where the reader looks for it and records the case before it runs.
func stage(_ format: Format, _ input: [UInt8], description: String) throws -> String {
    let dir = root + "/cases/" + format.name
    let path = dir + "/" + format.fileName
    try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(input).write(to: URL(fileURLWithPath: path))
    try Data((description + "\ninput: \(path)\n").utf8).write(to: URL(fileURLWithPath: currentCase))
    return dir
}

func runOne(_ format: Format, dir: String, label: String) -> Result<Bool, Violation> {
    watchdog.begin(label)
    defer { watchdog.end() }
    do { return .success(try format.run(dir)) } catch let v as Violation { return .failure(v) } catch {
        return .failure(Violation(description: "unexpected error \(error)"))
    }
}

if let replay = options.replay {
    guard selected.count == 1, let format = selected.first else { fail("--replay needs one --format") }
    guard let input = try? FileIO.readAll(replay),
        let dir = try? stage(format, input, description: "replay \(replay) as \(format.name)")
    else { fail("cannot read \(replay) or stage it") }
    switch runOne(format, dir: dir, label: "replay \(replay)") {
    case .success(let accepted): print(accepted ? "accepted" : "rejected: \(lastRejection)")
    case .failure(let v): print("FAILURE: \(v)"); exit(1)
    }
    exit(0)
}

let perFormatSeconds = options.seconds.map { $0 / Double(selected.count) }
let perFormatCases = options.cases ?? (options.seconds == nil ? 300 : Int.max)
var tallies: [Tally] = []
for (f, format) in selected.enumerated() {
    let formatIndex = UInt64(all.firstIndex { $0.name == format.name }!)
    var tally = Tally()
    let start = Watchdog.now()
    var k = options.only ?? 0
    while tally.cases < (options.only == nil ? perFormatCases : 1) {
        if let s = perFormatSeconds, Watchdog.now() - start >= s { break }
        let caseSeed = SplitMix64.hash(options.seed, formatIndex, UInt64(k))
        var m = Mutator(seed: caseSeed)
        let input = format.generate(&m)
        let label = "\(format.name) case \(k) (--seed \(options.seed) --format \(format.name) --case \(k))"
        let dir: String
        do {
            dir = try stage(format, input, description: label + "\nmutations: " + m.log.joined(separator: "; "))
        } catch {
            fail("cannot write the case: \(error)")
        }
        let t0 = Watchdog.now()
        let result = runOne(format, dir: dir, label: label)
        let took = Watchdog.now() - t0
        tally.slowest = max(tally.slowest, took)
        tally.cases += 1
        switch result {
        case .success(true): tally.accepted += 1
        case .success(false):
            tally.rejected += 1
            if options.verbose { print("\(label): \(m.log.joined(separator: "; ")): \(lastRejection.prefix(300))") }
        case .failure(let v):
            tally.failures += 1
            let saved = root + "/failures/\(format.name)-seed\(options.seed)-case\(k)"
            try? FileManager.default.createDirectory(atPath: root + "/failures", withIntermediateDirectories: true)
            try? Data(input).write(to: URL(fileURLWithPath: saved))
            print("FAILURE \(label): \(v) (input: \(saved))")
        }
        k += 1
    }
    tally.seconds = Watchdog.now() - start
    tallies.append(tally)
    _ = f
}
try? FileManager.default.removeItem(atPath: currentCase)

func column(_ s: String, _ width: Int, left: Bool = false) -> String {
    let pad = String(repeating: " ", count: max(0, width - s.count))
    return left ? s + pad : pad + s
}
print(
    column("format", 12, left: true) + column("cases", 9) + column("accepted", 10) + column("rejected", 10)
        + column("failures", 10) + column("seconds", 9) + column("slowest-ms", 12))
for (format, t) in zip(selected, tallies) {
    print(
        column(format.name, 12, left: true) + column("\(t.cases)", 9) + column("\(t.accepted)", 10)
            + column("\(t.rejected)", 10) + column("\(t.failures)", 10) + column(String(format: "%.1f", t.seconds), 9)
            + column(String(format: "%.1f", t.slowest * 1000), 12))
}
let failures = tallies.reduce(0) { $0 + $1.failures }
print("fuzz-cases: \(tallies.reduce(0) { $0 + $1.cases })")
print("fuzz-failures: \(failures)")
exit(failures == 0 ? 0 : 1)
