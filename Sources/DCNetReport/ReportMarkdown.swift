import DCNetMetrics
import Foundation

/// Attack results keyed by everything that defines an attack setting, keeping the latest record
/// when an evaluation was repeated.
enum AttackTable {
    struct Setting: Hashable, Comparable {
        let method: String
        let steps: Int?
        let mode: AttackMode

        var title: String {
            let name = method.uppercased() + ((steps ?? 1) > 1 ? "-\(steps!)" : "")
            return "\(name), \(mode.rawValue)"
        }
        var fileStem: String { "\(method)\((steps ?? 1) > 1 ? "-\(steps!)" : "")-\(mode.rawValue)" }

        static func < (lhs: Setting, rhs: Setting) -> Bool {
            (lhs.method, lhs.steps ?? 0, lhs.mode.rawValue) < (rhs.method, rhs.steps ?? 0, rhs.mode.rawValue)
        }
    }

    struct Key: Hashable, Comparable {
        let setting: Setting
        let source: String?
        let epsilonPixels: Double

        static func < (lhs: Key, rhs: Key) -> Bool {
            if lhs.setting != rhs.setting { return lhs.setting < rhs.setting }
            if lhs.source != rhs.source { return (lhs.source ?? "") < (rhs.source ?? "") }
            return lhs.epsilonPixels < rhs.epsilonPixels
        }
    }

    static func latest(_ records: [AttackRecord]) -> [Key: AttackRecord] {
        var table: [Key: AttackRecord] = [:]
        for record in records {
            let setting = Setting(method: record.method.lowercased(), steps: record.steps, mode: record.mode)
            table[
                Key(
                    setting: setting, source: record.mode == .blackBox ? record.source : nil,
                    epsilonPixels: record.epsilonPixels)] = record
        }
        return table
    }
}

/// Markdown formatting helpers.
enum Markdown {
    /// A table cell: pipes would end the cell and newlines the row.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    /// Prose that may contain `<` or `>` (e.g. "<inner product>"), which renderers would
    /// otherwise swallow as HTML tags. Other Markdown in it is kept on purpose.
    static func text(_ text: String) -> String {
        text.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Text for inside a code span in a table: backticks cannot be escaped inside a span.
    static func codeSpan(_ text: String) -> String {
        cell(text).replacingOccurrences(of: "`", with: "'")
    }

    static func altText(_ text: String) -> String {
        text.replacingOccurrences(of: "[", with: "(").replacingOccurrences(of: "]", with: ")")
    }

    static func percent(_ fraction: Double?, decimals: Int = 1) -> String {
        guard let fraction, fraction.isFinite else { return "—" }
        return String(format: "%.\(decimals)f%%", fraction * 100)
    }

    /// A difference of fractions in percentage points.
    static func points(_ fraction: Double) -> String {
        String(format: "%.1f pp", fraction * 100)
    }

    static func number(_ value: Double, decimals: Int) -> String {
        guard !value.isNaN else { return "NaN" }
        return value.isFinite ? String(format: "%.\(decimals)f", value) : (value > 0 ? "∞" : "−∞")
    }

    /// File-name-safe form of a group name: lower-case letters, digits, `-` and `_`.
    static func slug(_ name: String) -> String {
        var result = ""
        for character in name.lowercased() {
            if character.isASCII && (character.isLetter || character.isNumber || character == "_") {
                result.append(character)
            } else if !result.isEmpty && !result.hasSuffix("-") {
                result.append("-")
            }
        }
        while result.hasSuffix("-") { result.removeLast() }
        return result.isEmpty ? "group" : result
    }
}

func orderedUnique<T: Hashable>(_ values: [T]) -> [T] {
    var seen: Set<T> = []
    return values.filter { seen.insert($0).inserted }
}
