import ArgumentParser
import Foundation
import TOMLKit
import Yams

/// `train --config FILE`: a recipe whose keys are `train`'s long flag names (`lr = 0.001`,
/// `no-batchnorm = true`, `step-milestones = ["47%", "71%", "88%"]`). The file's settings become
/// flags placed before the command line's, so a flag given on the command line overrides the file
/// (ArgumentParser keeps the last value of an option). Every key is checked on its own first, so an
/// unknown key, a value of the wrong type or one the flag rejects is reported with the file, the key
/// and the value; conflicts between settings are found by `train`'s own checks on the merged flags,
/// which then say which of the flags came from the file.
struct ConfigFile {
    let path: String
    /// (key, value as written in the file), in the order the flags are placed.
    let settings: [(key: String, value: Setting)]

    enum Setting: CustomStringConvertible {
        case bool(Bool)
        case scalar(String, quoted: Bool)
        case list([String])

        var description: String {
            switch self {
            case .bool(let b): return String(b)
            case .scalar(let s, let quoted): return quoted ? "\"\(s)\"" : s
            case .list(let items): return "[" + items.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
            }
        }
    }

    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// The file currently expanded into the arguments (nil when none), so `Train.validate()` can say
    /// which of the flags in a conflict came from it.
    @TaskLocal static var current: ConfigFile?
    /// Set while one key is parsed on its own: only the flag's own parsing is checked then, not the
    /// rules between flags (those need the merged command line).
    @TaskLocal static var checkingOneKey = false

    // MARK: Reading

    init(path: String) throws {
        self.path = path
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw Problem(description: "\(path): cannot read the configuration file (\(Self.reason(error)))")
        }
        let lower = path.lowercased()
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
            settings = try Self.readYAML(text, path: path)
        } else if lower.hasSuffix(".toml") {
            settings = try Self.readTOML(text, path: path)
        } else {
            throw Problem(description: "\(path): a configuration file must be .toml, .yaml or .yml")
        }
    }

    private static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }

    private static func readTOML(_ text: String, path: String) throws -> [(key: String, value: Setting)] {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw Problem(
                description: "\(path): line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)")
        }
        return try table.keys.map { key in
            guard let value = table[key]?.tomlValue else {
                throw Problem(description: "\(path): key '\(key)' has no value")
            }
            return (key, try setting(toml: value, key: key, path: path))
        }
    }

    private static func setting(toml value: TOMLValue, key: String, path: String) throws -> Setting {
        switch value.type {
        case .bool: return .bool(value.bool!)
        case .int: return .scalar(String(value.int!), quoted: false)
        case .double: return .scalar(number(value.double!), quoted: false)
        case .string: return .scalar(value.string!, quoted: true)
        case .array:
            let items = try value.array!.map { item -> String in
                switch item.type {
                case .int: return String(item.int!)
                case .double: return number(item.double!)
                case .string: return item.string!
                default:
                    throw Problem(
                        description: "\(path): key '\(key)': a list holds numbers or strings, not \(item.type)")
                }
            }
            return .list(items)
        case .table:
            throw Problem(
                description: "\(path): [\(key)] is a table; the keys are train's long flag names at the top level "
                    + "(no sections)")
        default:
            throw Problem(
                description: "\(path): key '\(key)' = \(value.debugDescription): dates and times are not flags")
        }
    }

    private static func readYAML(_ text: String, path: String) throws -> [(key: String, value: Setting)] {
        let document: Any?
        do {
            document = try Yams.load(yaml: text)
        } catch let e as YamlError {
            throw Problem(description: "\(path): \(e)")
        }
        guard let document else { return [] }
        guard let map = document as? [String: Any] else {
            throw Problem(description: "\(path): the document must be a mapping of train's long flag names to values")
        }
        return try map.keys.sorted().map { key in
            (key, try setting(yaml: map[key]!, key: key, path: path))
        }
    }

    private static func setting(yaml value: Any, key: String, path: String) throws -> Setting {
        func scalar(_ v: Any) -> String? {
            switch v {
            case let i as Int: return String(i)
            case let d as Double: return number(d)
            case let s as String: return s
            default: return nil
            }
        }
        switch value {
        case let b as Bool: return .bool(b)
        case let s as String: return .scalar(s, quoted: true)
        case let items as [Any]:
            return .list(
                try items.map {
                    guard let s = scalar($0) else {
                        throw Problem(description: "\(path): key '\(key)': a list holds numbers or strings")
                    }
                    return s
                })
        case is [String: Any]:
            throw Problem(
                description: "\(path): key '\(key)' holds a mapping; the keys are train's long flag names at the top "
                    + "level (no sections)")
        default:
            guard let s = scalar(value) else {
                throw Problem(description: "\(path): key '\(key)' has a value that is not a number, string or list")
            }
            return .scalar(s, quoted: false)
        }
    }

    /// A double as a flag value: 0.001 and 5e-4 as written by Swift, 30.0 stays "30.0" (so an
    /// integer flag refuses it rather than truncating).
    private static func number(_ d: Double) -> String { String(d) }

    // MARK: Checking and expanding

    /// `train`'s long flag names: each an on/off flag or an option taking a value.
    enum FlagKind { case flag, option }

    /// The long flag names declared by `types` (a command and the option groups it includes).
    static func flagKinds(of types: [ParsableArguments.Type]) -> [String: FlagKind] {
        var kinds: [String: FlagKind] = [:]
        for type in types {
            for child in Mirror(reflecting: type.init()).children {
                guard let label = child.label, label.hasPrefix("_") else { continue }
                let typeName = String(describing: Swift.type(of: child.value))
                let name = kebabCase(String(label.dropFirst()))
                if typeName.hasPrefix("Flag<") {
                    kinds[name] = .flag
                } else if typeName.hasPrefix("Option<") {
                    kinds[name] = .option
                }
            }
        }
        return kinds
    }

    /// ArgumentParser's default long name of a property: `noBatchnorm` → `no-batchnorm`.
    static func kebabCase(_ name: String) -> String {
        var out = ""
        let chars = Array(name)
        for (i, c) in chars.enumerated() {
            if c.isUppercase {
                let previousLower = i > 0 && !chars[i - 1].isUppercase
                let nextLower = i + 1 < chars.count && chars[i + 1].isLowercase
                if i > 0 && (previousLower || nextLower) { out.append("-") }
                out.append(contentsOf: c.lowercased())
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Keys a recipe may not set: they say where this process reads its configuration or what it does.
    static let refusedKeys: [String: String] = [
        "config": "a configuration file cannot name another one",
        "check-flags": "give --check-flags on the command line",
        "help": "not a setting",
    ]

    /// The flags this file stands for, each key checked on its own against `Train`'s parser.
    func arguments() throws -> [String] {
        let kinds = Self.flagKinds(of: Train.flagTypes)
        var out: [String] = []
        var problems: [String] = []
        for (key, value) in settings {
            let at = "\(path): key '\(key)' = \(value)"
            if let why = Self.refusedKeys[key] {
                problems.append("\(path): key '\(key)': \(why)")
                continue
            }
            guard let kind = kinds[key] else {
                let near = Self.nearest(key, in: kinds.keys)
                problems.append(
                    "\(path): unknown key '\(key)': not a flag of dcnet-dist train"
                        + (near.map { " (did you mean '\($0)'?)" } ?? "") + "; the keys are train's long flag names")
                continue
            }
            let tokens: [String]
            switch (kind, value) {
            case (.flag, .bool(let on)):
                tokens = on ? ["--\(key)"] : []
            case (.flag, _):
                problems.append("\(at): --\(key) is an on/off flag: write \(key) = true or false")
                continue
            case (.option, .bool):
                problems.append("\(at): --\(key) takes a value, not true or false")
                continue
            // One token, `--key=value`: a value starting with "-" (epochs = -2) is not read as a flag.
            case (.option, .scalar(let s, _)):
                tokens = ["--\(key)=\(s)"]
            case (.option, .list(let items)):
                tokens = ["--\(key)=" + items.joined(separator: ",")]
            }
            if let message = Self.parseProblem(tokens) {
                problems.append("\(at): \(message)")
                continue
            }
            out += tokens
        }
        if !problems.isEmpty { throw Problem(description: problems.joined(separator: "\n")) }
        return out
    }

    /// What `train`'s parser says of these flags alone (nil: they parse).
    private static func parseProblem(_ tokens: [String]) -> String? {
        do {
            _ = try $checkingOneKey.withValue(true) {
                try Train.parse(["--data", "/"] + tokens)
            }
            return nil
        } catch {
            return Train.message(for: error)
        }
    }

    private static func nearest<S: Sequence>(_ key: String, in names: S) -> String? where S.Element == String {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var row = Array(0...b.count)
            for (i, ca) in a.enumerated() {
                var previous = row[0]
                row[0] = i + 1
                for (j, cb) in b.enumerated() {
                    let substitute = previous + (ca == cb ? 0 : 1)
                    previous = row[j + 1]
                    row[j + 1] = min(substitute, row[j] + 1, row[j + 1] + 1)
                }
            }
            return row[b.count]
        }
        let k = Array(key)
        var best: (name: String, distance: Int)?
        for name in names.sorted() {
            let d = distance(k, Array(name))
            if best == nil || d < best!.distance { best = (name, d) }
        }
        guard let best, best.distance <= max(2, key.count / 3) else { return nil }
        return best.name
    }

    /// The keys of this file whose flags the command line does not give again (those are the ones
    /// in force), for naming them in a conflict.
    func effectiveKeys(commandLine: [String]) -> [(key: String, value: Setting)] {
        let given = Set(
            commandLine.compactMap { arg -> String? in
                guard arg.hasPrefix("--") else { return nil }
                return String(arg.dropFirst(2).split(separator: "=", maxSplits: 1).first ?? "")
            })
        return settings.filter { !given.contains($0.key) }
    }

    /// `problem` with the file's settings it names (flags written `--key`) appended.
    func annotate(_ problem: String, commandLine: [String]) -> String {
        let named = effectiveKeys(commandLine: commandLine).filter { entry in
            guard let range = problem.range(of: "--\(entry.key)") else { return false }
            // Not a prefix of a longer flag name (--radius in --radius-decay).
            let after = problem[range.upperBound...].first
            return after.map { !($0.isLetter || $0.isNumber || $0 == "-") } ?? true
        }
        guard !named.isEmpty else { return problem }
        return problem + " (from \(path): " + named.map { "\($0.key) = \($0.value)" }.joined(separator: ", ") + ")"
    }

    // MARK: The command line

    /// `arguments` (without the program name) with the settings of `train --config FILE` placed
    /// before the command line's own flags; other arguments are returned as they are.
    static func expand(_ arguments: [String]) throws -> (arguments: [String], file: ConfigFile?) {
        guard arguments.first == "train" else { return (arguments, nil) }
        var rest = Array(arguments.dropFirst())
        var path: String?
        var i = 0
        while i < rest.count {
            if rest[i] == "--" { break }
            if rest[i] == "--config" {
                guard i + 1 < rest.count else { throw Problem(description: "--config needs a file name") }
                if path != nil { throw Problem(description: "--config may be given once") }
                path = rest[i + 1]
                rest.removeSubrange(i...(i + 1))
                continue
            }
            if rest[i].hasPrefix("--config=") {
                if path != nil { throw Problem(description: "--config may be given once") }
                path = String(rest[i].dropFirst("--config=".count))
                rest.remove(at: i)
                continue
            }
            i += 1
        }
        guard let path else { return (arguments, nil) }
        let file = try ConfigFile(path: path)
        return (["train"] + (try file.arguments()) + rest, file)
    }
}
