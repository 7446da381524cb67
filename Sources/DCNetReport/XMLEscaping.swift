/// Text and attribute escaping for XML (and therefore SVG).
public enum XMLEscaping {
    /// The five characters XML reserves, and the entities that stand for them.
    static let entities: [Unicode.Scalar: String] = [
        "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&apos;",
    ]

    /// Escapes `& < > " '` and drops control characters that XML 1.0 forbids even when escaped
    /// (a stray byte from a run name would otherwise make the whole file unreadable).
    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let entity = entities[scalar] {
                result += entity
            } else if isAllowed(scalar) {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Whether an XML 1.0 document may hold `scalar`: not a C0 control other than tab, line feed
    /// and carriage return, nor U+FFFE or U+FFFF.
    static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: return true
        case ..<0x20, 0xFFFE, 0xFFFF: return false
        default: return true
        }
    }
}
