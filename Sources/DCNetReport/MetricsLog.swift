import Foundation

/// Everything one run directory recorded, after resolving restarts.
public struct RunMetrics: Sendable, Equatable {
    /// The first `config` line; `nil` if the run died before writing it.
    public var config: RunConfig?
    /// Config lines written by later `--resume` invocations, oldest first.
    public var resumedConfigs: [RunConfig]
    /// One record per epoch, ascending. After a resume from an earlier checkpoint the re-run
    /// epochs replace the ones written before the interruption.
    public var epochs: [EpochRecord]
    public var progress: [ProgressRecord]
    public var attacks: [AttackRecord]
    /// Lines that were skipped (truncated by a kill) with the reason, for the report to show.
    public var warnings: [String]

    public init(
        config: RunConfig? = nil, resumedConfigs: [RunConfig] = [], epochs: [EpochRecord] = [],
        progress: [ProgressRecord] = [], attacks: [AttackRecord] = [], warnings: [String] = []
    ) {
        self.config = config
        self.resumedConfigs = resumedConfigs
        self.epochs = epochs
        self.progress = progress
        self.attacks = attacks
        self.warnings = warnings
    }

    /// The config that produced the latest records (the last resume, else the first config).
    public var latestConfig: RunConfig? { resumedConfigs.last ?? config }
}

public enum MetricsLogError: Error, Equatable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    /// `line` is 1-based, as editors show it.
    case malformedLine(file: String, line: Int, reason: String, excerpt: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            return "\(file): cannot read metrics: \(reason)"
        case .malformedLine(let file, let line, let reason, let excerpt):
            return "\(file):\(line): malformed metrics line: \(reason) (line starts with: \(excerpt))"
        }
    }
}

/// Reader (and line encoder) for the JSON-lines metrics files.
public enum MetricsLog {
    public static let metricsFileName = "metrics.jsonl"
    public static let attacksFileName = "attacks.jsonl"

    enum Record {
        case config(RunConfig)
        case progress(ProgressRecord)
        case epoch(EpochRecord)
        case attack(AttackRecord)
        /// A kind this version does not know; skipped so newer trainers do not break old reports.
        case unknown(String)
    }

    /// Reads one JSON-lines file.
    ///
    /// A last line without its terminating newline is a record cut short by a kill and is skipped
    /// with a warning. A record cut short and followed, on the same line, by the `config` record
    /// of the resumed run (the file is opened for append on `--resume`) is recovered the same way.
    /// Any other line that does not parse throws ``MetricsLogError/malformedLine(file:line:reason:excerpt:)``.
    public static func read(path: String) throws -> RunMetrics {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw MetricsLogError.unreadable(file: path, reason: error.localizedDescription)
        }
        return try parse(data, fileName: path)
    }

    /// Reads `metrics.jsonl` of a run directory and, if present, its `attacks.jsonl`.
    public static func read(runDirectory: URL) throws -> RunMetrics {
        var metrics = try read(path: runDirectory.appendingPathComponent(metricsFileName).path)
        let attacksPath = runDirectory.appendingPathComponent(attacksFileName).path
        if FileManager.default.fileExists(atPath: attacksPath) {
            let attackLog = try read(path: attacksPath)
            metrics.attacks += attackLog.attacks
            metrics.warnings += attackLog.warnings
        }
        return metrics
    }

    /// Parses the contents of a JSON-lines file; `fileName` is only used in errors and warnings.
    public static func parse(_ data: Data, fileName: String) throws -> RunMetrics {
        var bytes = [UInt8](data)
        // A crash on some filesystems leaves the unwritten tail of the last block as NUL bytes.
        while bytes.last == 0 { bytes.removeLast() }
        let endsWithNewline = bytes.last == UInt8(ascii: "\n")
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let lastContentIndex = lines.lastIndex { !String(decoding: $0, as: UTF8.self).trimmed.isEmpty }

        var metrics = RunMetrics()
        for (index, lineBytes) in lines.enumerated() {
            let line = String(decoding: lineBytes, as: UTF8.self).trimmed
            if line.isEmpty { continue }
            let lineNumber = index + 1
            switch decodeRecord(line) {
            case .success(let record):
                append(record, to: &metrics)
            case .failure(let failure):
                if index == lastContentIndex && !endsWithNewline {
                    metrics.warnings.append(
                        "\(fileName):\(lineNumber): skipped a truncated last line (\(failure.reason))")
                    return metrics
                }
                guard let restart = recoverRestart(line) else {
                    throw MetricsLogError.malformedLine(
                        file: fileName, line: lineNumber,
                        reason: failure.reason, excerpt: excerpt(line))
                }
                metrics.warnings.append("\(fileName):\(lineNumber): skipped a record cut short before a resume")
                append(restart, to: &metrics)
            }
        }
        return metrics
    }

    /// One record as a JSON line (with the trailing newline), in the format `read` accepts.
    public static func line(for record: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return String(decoding: try encoder.encode(record), as: UTF8.self) + "\n"
    }

    // MARK: - Internals

    struct LineFailure: Error { let reason: String }

    private struct KindProbe: Decodable { let kind: String }

    private static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        // A diverged loss may be written as a string; strict JSON has no NaN literal.
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }

    static func decodeRecord(_ line: String) -> Result<Record, LineFailure> {
        let data = Data(line.utf8)
        let decoder = makeDecoder()
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            return .failure(LineFailure(reason: "not a JSON object"))
        }
        do {
            let kind = try decoder.decode(KindProbe.self, from: data).kind
            switch kind {
            case "config": return .success(.config(try decoder.decode(RunConfig.self, from: data)))
            case "progress": return .success(.progress(try decoder.decode(ProgressRecord.self, from: data)))
            case "epoch": return .success(.epoch(try decoder.decode(EpochRecord.self, from: data)))
            case "attack": return .success(.attack(try decoder.decode(AttackRecord.self, from: data)))
            default: return .success(.unknown(kind))
            }
        } catch let error as DecodingError {
            return .failure(LineFailure(reason: describe(error)))
        } catch {
            return .failure(LineFailure(reason: "\(error)"))
        }
    }

    /// Finds a complete `config` record starting after the beginning of a broken line.
    private static func recoverRestart(_ line: String) -> Record? {
        var searchStart = line.index(after: line.startIndex)
        while let brace = line[searchStart...].firstIndex(of: "{") {
            if case .success(.config(let config)) = decodeRecord(String(line[brace...])) {
                return .config(config)
            }
            searchStart = line.index(after: brace)
        }
        return nil
    }

    private static func append(_ record: Record, to metrics: inout RunMetrics) {
        switch record {
        case .config(let config):
            if metrics.config == nil { metrics.config = config } else { metrics.resumedConfigs.append(config) }
        case .epoch(let epoch):
            // A resumed run restarts from its last checkpoint and re-writes later epochs.
            metrics.epochs.removeAll { $0.epoch >= epoch.epoch }
            metrics.epochs.append(epoch)
        case .progress(let progress):
            metrics.progress.removeAll { $0.step >= progress.step }
            metrics.progress.append(progress)
        case .attack(let attack):
            metrics.attacks.append(attack)
        case .unknown:
            break
        }
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
