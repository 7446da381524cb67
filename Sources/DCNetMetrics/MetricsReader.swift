import Foundation

public enum MetricsLogError: Error, Equatable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    /// `line` is 1-based, as editors show it.
    case malformedLine(file: String, line: Int, reason: String, excerpt: String)
    /// A line of a schema version this reader does not know (see ``MetricsRecord/schemaVersion``).
    case unsupportedSchema(file: String, line: Int, schema: Int)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            return "\(file): cannot read metrics: \(reason)"
        case .malformedLine(let file, let line, let reason, let excerpt):
            return "\(file):\(line): malformed metrics line: \(reason) (line starts with: \(excerpt))"
        case .unsupportedSchema(let file, let line, let schema):
            return "\(file):\(line): \(MetricsSchemaError(schema: schema))"
        }
    }
}

/// One record of a file and where it came from.
public struct MetricsLine: Sendable, Equatable {
    /// 1-based.
    public var line: Int
    public var record: MetricsRecord

    public init(line: Int, record: MetricsRecord) { (self.line, self.record) = (line, record) }
}

/// The records of one JSON-lines file, in file order, and the lines that were skipped.
public struct MetricsFile: Sendable, Equatable {
    public var lines: [MetricsLine]
    /// `file:line: why` for every skipped line (truncated by a kill), for reports to show.
    public var warnings: [String]

    public var records: [MetricsRecord] { lines.map(\.record) }
}

/// Reads metrics and attacks files into typed records.
public enum MetricsReader {
    /// Reads one JSON-lines file.
    ///
    /// A last line without its terminating newline is a record cut short by a kill and is skipped
    /// with a warning. A record cut short and followed, on the same line, by the `config` record
    /// of the resumed run (the file is opened for append on `--resume`) is recovered the same way.
    /// Any other line that does not parse throws ``MetricsLogError/malformedLine(file:line:reason:excerpt:)``,
    /// and a line of a newer schema ``MetricsLogError/unsupportedSchema(file:line:schema:)``.
    public static func read(path: String) throws -> MetricsFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw MetricsLogError.unreadable(file: path, reason: error.localizedDescription)
        }
        return try parse(data, fileName: path)
    }

    /// Parses the contents of a JSON-lines file; `fileName` is only used in errors and warnings.
    public static func parse(_ data: Data, fileName: String) throws -> MetricsFile {
        var bytes = [UInt8](data)
        // A crash on some filesystems leaves the unwritten tail of the last block as NUL bytes.
        while bytes.last == 0 { bytes.removeLast() }
        let endsWithNewline = bytes.last == UInt8(ascii: "\n")
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let lastContentIndex = lines.lastIndex { !String(decoding: $0, as: UTF8.self).trimmed.isEmpty }

        var file = MetricsFile(lines: [], warnings: [])
        for (index, lineBytes) in lines.enumerated() {
            let line = String(decoding: lineBytes, as: UTF8.self).trimmed
            if line.isEmpty { continue }
            let lineNumber = index + 1
            switch decode(line) {
            case .success(let record):
                file.lines.append(MetricsLine(line: lineNumber, record: record))
            case .failure(.unsupported(let schema)):
                // A complete record of a newer writer, not damage: never skipped as truncated.
                throw MetricsLogError.unsupportedSchema(file: fileName, line: lineNumber, schema: schema)
            case .failure(.malformed(let reason)):
                if index == lastContentIndex && !endsWithNewline {
                    file.warnings.append("\(fileName):\(lineNumber): skipped a truncated last line (\(reason))")
                    return file
                }
                guard let restart = recoverRestart(line) else {
                    throw MetricsLogError.malformedLine(
                        file: fileName, line: lineNumber, reason: reason, excerpt: excerpt(line))
                }
                file.warnings.append("\(fileName):\(lineNumber): skipped a record cut short before a resume")
                file.lines.append(MetricsLine(line: lineNumber, record: restart))
            }
        }
        return file
    }

    // MARK: - Internals

    enum LineFailure: Error {
        case malformed(String)
        case unsupported(Int)
    }

    static func decode(_ line: String) -> Result<MetricsRecord, LineFailure> {
        // One plain reason for a line cut mid-way or holding a stray value, instead of whatever
        // the record decoder trips over first.
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = MetricsRecord.nonFiniteDecoding
        guard case .object? = try? decoder.decode(JSONValue.self, from: Data(line.utf8)) else {
            return .failure(.malformed("not a JSON object"))
        }
        do {
            return .success(try MetricsRecord(jsonLine: line))
        } catch let error as MetricsSchemaError {
            return .failure(.unsupported(error.schema))
        } catch let error as DecodingError {
            return .failure(.malformed(describe(error)))
        } catch {
            return .failure(.malformed("\(error)"))
        }
    }

    /// Finds a complete `config` record starting after the beginning of a broken line.
    private static func recoverRestart(_ line: String) -> MetricsRecord? {
        var searchStart = line.index(after: line.startIndex)
        while let brace = line[searchStart...].firstIndex(of: "{") {
            if case .success(let record) = decode(String(line[brace...])), case .config = record {
                return record
            }
            searchStart = line.index(after: brace)
        }
        return nil
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [CodingKey]) -> String {
            codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context.codingPath)
            return "missing field \"\(parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)\""
        case .typeMismatch(let type, let context):
            return "field \"\(path(context.codingPath))\" is not a \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "field \"\(path(context.codingPath))\" is null, expected a \(typeName(type))"
        case .dataCorrupted(let context):
            let location = path(context.codingPath)
            return location.isEmpty ? "invalid JSON" : "field \"\(location)\": \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "integer"
        case is Double.Type: return "number"
        case is String.Type: return "string"
        default: return "\(type)"
        }
    }

    private static func excerpt(_ line: String) -> String {
        line.count <= 60 ? line : String(line.prefix(60)) + "…"
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
