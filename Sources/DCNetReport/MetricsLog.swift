import DCNetMetrics
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
    /// Evaluations outside the epoch records (a run stopped by `--max-steps`), ascending by step.
    public var evaluations: [EvaluationRecord]
    public var attacks: [AttackRecord]
    /// Lines that were skipped (truncated by a kill) with the reason, for the report to show.
    public var warnings: [String]

    public init(
        config: RunConfig? = nil, resumedConfigs: [RunConfig] = [], epochs: [EpochRecord] = [],
        progress: [ProgressRecord] = [], evaluations: [EvaluationRecord] = [], attacks: [AttackRecord] = [],
        warnings: [String] = []
    ) {
        self.config = config
        self.resumedConfigs = resumedConfigs
        self.epochs = epochs
        self.progress = progress
        self.evaluations = evaluations
        self.attacks = attacks
        self.warnings = warnings
    }

    /// The config that produced the latest records (the last resume, else the first config).
    public var latestConfig: RunConfig? { resumedConfigs.last ?? config }
}

/// A run directory's metrics, read through DCNetMetrics' ``MetricsReader``.
public enum MetricsLog {
    public static let metricsFileName = "metrics.jsonl"
    public static let attacksFileName = "attacks.jsonl"

    /// Reads one JSON-lines file (see ``MetricsReader/read(path:)`` for what is skipped).
    public static func read(path: String) throws -> RunMetrics {
        resolve(try MetricsReader.read(path: path))
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
        resolve(try MetricsReader.parse(data, fileName: fileName))
    }

    private static func resolve(_ file: MetricsFile) -> RunMetrics {
        var metrics = RunMetrics(warnings: file.warnings)
        for record in file.records {
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
            case .evaluation(let evaluation):
                metrics.evaluations.removeAll { $0.step >= evaluation.step }
                metrics.evaluations.append(evaluation)
            case .attack(let attack):
                metrics.attacks.append(attack)
            case .unknown:
                break
            }
        }
        return metrics
    }
}
