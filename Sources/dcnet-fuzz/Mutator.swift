import DCNetRandom

/// Seeded mutations of bytes and of JSON text. Every choice comes from `rng`, so a case is
/// reproduced from (seed, format, case index) alone; `log` says what was done, for the saved case.
struct Mutator {
    var rng: Xoshiro256StarStar
    var log: [String] = []

    init(seed: UInt64) { rng = Xoshiro256StarStar(seed: seed) }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(rng.next(below: UInt64(n))) }
    mutating func chance(_ p: Double) -> Bool { Double(rng.next() >> 11) / Double(1 << 53) < p }
    mutating func pick<T>(_ xs: [T]) -> T { xs[below(xs.count)] }

    /// Numbers that sit on the edges of Int, Int32, UInt64, Float and Double, or are not numbers.
    static let extremeNumbers = [
        "-1", "0", "1", "2", "-0", "0.5", "255", "256", "65536", "2147483647", "2147483648", "-2147483649",
        "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "-9223372036854775809", "18446744073709551615", "1e308", "-1e308", "1e309", "1e-320", "3.5e38",
        "1e39", "NaN", "Infinity", "-Infinity", "nan", "1.0e2", "100000000000000000000000000000",
    ]
    /// Strings the readers give meaning to, and some they should refuse.
    static let knownStrings = [
        "", "x", "cnn9", "resnet32", "baseline", "decoupled", "sgd", "adam", "cosine", "step", "constant",
        "cifar10", "cifar100", "authors", "meanstd", "wrap", "drop", "linear", "sqrt", "none", "tanh", "sphere",
        "ball", "segmented", "logarithmic", "cos", "sigmoid", "learnable", "relative", "fixed", "F32", "F64",
        "I64", "U8", "BF16", "F16", "__metadata__", "config", "epoch", "progress", "evaluation", "attack",
        "faster-convergence", "higher-accuracy", "no-higher-accuracy", "reaches-accuracy", "more-robust",
        "fgsm", "bim", "dcnet-checkpoint", "1", "2", "3", "crc32:00000000", "crc32-file:00000000", "\\u0000",
        "\\ud800", "é", String(repeating: "a", count: 300),
    ]
    static let otherValues = ["null", "true", "false", "[]", "{}", "[1,2]", "\"s\"", "{\"a\":1}", "[[]]", "-1"]

    // MARK: bytes

    mutating func mutateBytes(_ input: [UInt8], rounds: Int? = nil) -> [UInt8] {
        var b = input
        for _ in 0..<(rounds ?? 1 + below(3)) {
            let operation = below(8)
            switch operation {
            case 0:
                let at = below(b.count + 1)
                log.append("truncate at \(at) of \(b.count)")
                b = Array(b.prefix(at))
            case 1:
                guard !b.isEmpty else { continue }
                let n = 1 + below(8)
                for _ in 0..<n { let i = below(b.count); b[i] ^= 1 << UInt8(below(8)) }
                log.append("flip \(n) bits")
            case 2:
                guard !b.isEmpty else { continue }
                let i = below(b.count), v = UInt8(truncatingIfNeeded: pick([0, 0xff, 0x7f, 0x80, below(256)]))
                log.append("byte \(i) = \(v)")
                b[i] = v
            case 3:
                let at = below(b.count + 1), n = 1 + below(16)
                log.append("insert \(n) bytes at \(at)")
                b.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: below(256)) }, at: at)
            case 4:
                guard !b.isEmpty else { continue }
                let at = below(b.count), n = min(1 + below(16), b.count - at)
                log.append("delete \(n) bytes at \(at)")
                b.removeSubrange(at..<at + n)
            case 5, 6:
                // A length-like field at an extreme: 8 or 4 little-endian bytes anywhere.
                let width = operation == 5 ? 8 : 4
                guard b.count >= width else { continue }
                let at = below(b.count - width + 1)
                let v = pick(Self.extremeWords(size: b.count))
                log.append("u\(width * 8) at \(at) = \(width == 8 ? v : UInt64(UInt32(truncatingIfNeeded: v)))")
                b.replaceSubrange(at..<at + width, with: Self.littleEndian(v, width))
            default:
                guard b.count > 1 else { continue }
                let from = below(b.count), to = below(b.count), n = min(1 + below(64), b.count - from)
                log.append("copy \(n) bytes from \(from) to \(to)")
                b.insert(contentsOf: Array(b[from..<from + n]), at: to)
            }
        }
        return b
    }

    static func extremeWords(size: Int) -> [UInt64] {
        let s = UInt64(size)
        return [
            0, 1, 2, 7, 8, s &- 9, s &- 8, s &- 1, s, s &+ 1, 1 << 31, 1 << 32, 1 << 63, UInt64.max, UInt64.max - 7,
        ]
    }

    static func littleEndian(_ v: UInt64, _ n: Int) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) }
    }

    // MARK: JSON text

    /// One to three edits of JSON text that keep it mostly JSON: numbers and strings replaced by
    /// extremes, members removed or duplicated, values changed to another type, arrays resized.
    mutating func mutateJSON(_ text: String, rounds: Int? = nil) -> String {
        var bytes = Array(text.utf8)
        for _ in 0..<(rounds ?? 1 + below(3)) {
            let tokens = JSONTokens.scan(bytes)
            guard !tokens.isEmpty else { break }
            switch below(9) {
            case 0, 1:
                let numbers = tokens.indices.filter { tokens[$0].kind == .number }
                guard let t = numbers.isEmpty ? nil : pick(numbers) else { continue }
                let v = pick(Self.extremeNumbers)
                log.append("number \(String(decoding: bytes[tokens[t].range], as: UTF8.self)) -> \(v)")
                bytes.replaceSubrange(tokens[t].range, with: Array(v.utf8))
            case 2, 3:
                let strings = tokens.indices.filter { tokens[$0].kind == .string }
                guard let t = strings.isEmpty ? nil : pick(strings) else { continue }
                let v = "\"" + pick(Self.knownStrings) + "\""
                log.append("string \(String(decoding: bytes[tokens[t].range], as: UTF8.self)) -> \(v.prefix(40))")
                bytes.replaceSubrange(tokens[t].range, with: Array(v.utf8))
            case 4:
                guard let (key, value) = pickMember(tokens) else { continue }
                // The member and the comma that separates it from a neighbour.
                var lo = tokens[key].range.lowerBound, hi = tokens[value.upperBound - 1].range.upperBound
                if value.upperBound < tokens.count, tokens[value.upperBound].kind == .comma {
                    hi = tokens[value.upperBound].range.upperBound
                } else if key > 0, tokens[key - 1].kind == .comma {
                    lo = tokens[key - 1].range.lowerBound
                }
                log.append("remove member \(String(decoding: bytes[tokens[key].range], as: UTF8.self))")
                bytes.removeSubrange(lo..<hi)
            case 5:
                guard let (key, value) = pickMember(tokens) else { continue }
                let member = Array(bytes[tokens[key].range.lowerBound..<tokens[value.upperBound - 1].range.upperBound])
                log.append("duplicate member \(String(decoding: bytes[tokens[key].range], as: UTF8.self))")
                bytes.insert(contentsOf: member + [UInt8(ascii: ",")], at: tokens[key].range.lowerBound)
            case 6:
                let starts = tokens.indices.filter { tokens[$0].startsValue }
                guard let t = starts.isEmpty ? nil : pick(starts) else { continue }
                let end = JSONTokens.valueEnd(tokens, from: t)
                let v = pick(Self.otherValues)
                log.append("value at \(tokens[t].range.lowerBound) -> \(v)")
                bytes.replaceSubrange(
                    tokens[t].range.lowerBound..<tokens[end - 1].range.upperBound, with: Array(v.utf8))
            case 7:
                let arrays = tokens.indices.filter {
                    tokens[$0].kind == .open && bytes[tokens[$0].range.lowerBound] == 91
                }
                guard let t = arrays.isEmpty ? nil : pick(arrays) else { continue }
                let element = pick(Self.extremeNumbers + ["\"x\"", "null", "[]"])
                let at = tokens[t].range.upperBound
                let empty = t + 1 < tokens.count && tokens[t + 1].kind == .close
                log.append("array at \(at) gains \(element)")
                bytes.insert(contentsOf: Array((empty ? element : element + ",").utf8), at: at)
            default:
                log.append("bytes:")
                bytes = mutateBytes(bytes, rounds: 1)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A random object member: the key's token index and the token range of its value.
    private mutating func pickMember(_ tokens: [JSONTokens.Token]) -> (Int, Range<Int>)? {
        let keys = tokens.indices.filter {
            $0 + 2 < tokens.count && tokens[$0].kind == .string && tokens[$0 + 1].kind == .colon
        }
        guard !keys.isEmpty else { return nil }
        let key = pick(keys)
        return (key, (key + 2)..<JSONTokens.valueEnd(tokens, from: key + 2))
    }
}

/// A forgiving JSON lexer: enough structure to find values and members in text that may already
/// be damaged.
enum JSONTokens {
    enum Kind { case string, number, literal, open, close, colon, comma, other }
    struct Token {
        var kind: Kind
        var range: Range<Int>
        var startsValue: Bool { kind == .string || kind == .number || kind == .literal || kind == .open }
    }

    static func scan(_ b: [UInt8]) -> [Token] {
        var out: [Token] = []
        var i = 0
        while i < b.count {
            let c = b[i]
            switch c {
            case 0x20, 0x09, 0x0a, 0x0d: i += 1
            case UInt8(ascii: "\""):
                var j = i + 1
                while j < b.count && b[j] != UInt8(ascii: "\"") { j += b[j] == UInt8(ascii: "\\") ? 2 : 1 }
                j = min(j + 1, b.count)
                out.append(Token(kind: .string, range: i..<j)); i = j
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                var j = i + 1
                while j < b.count, "0123456789.eE+-".utf8.contains(b[j]) { j += 1 }
                out.append(Token(kind: .number, range: i..<j)); i = j
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
                var j = i + 1
                while j < b.count, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b[j] | 0x20) { j += 1 }
                out.append(Token(kind: .literal, range: i..<j)); i = j
            case UInt8(ascii: "{"), UInt8(ascii: "["): out.append(Token(kind: .open, range: i..<i + 1)); i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): out.append(Token(kind: .close, range: i..<i + 1)); i += 1
            case UInt8(ascii: ":"): out.append(Token(kind: .colon, range: i..<i + 1)); i += 1
            case UInt8(ascii: ","): out.append(Token(kind: .comma, range: i..<i + 1)); i += 1
            default: out.append(Token(kind: .other, range: i..<i + 1)); i += 1
            }
        }
        return out
    }

    /// One past the last token of the value starting at token `start`.
    static func valueEnd(_ tokens: [Token], from start: Int) -> Int {
        guard start < tokens.count, tokens[start].kind == .open else { return min(start + 1, tokens.count) }
        var depth = 0, i = start
        while i < tokens.count {
            if tokens[i].kind == .open { depth += 1 }
            if tokens[i].kind == .close { depth -= 1; if depth == 0 { return i + 1 } }
            i += 1
        }
        return tokens.count
    }
}
