import ArgumentParser
import DCNetFormats
import DCNetMetrics
import Foundation

/// Turns finished runs' metrics files (every committed suite record among them) into TensorBoard
/// runs, with the same scalars `train --tensorboard` writes while training.
struct TensorBoardExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tensorboard",
        abstract: "Convert metrics.jsonl files into TensorBoard event files, one TensorBoard run per file.",
        discussion: """
            Each run is named after the directory that holds its metrics file (docs/report-standard/records/tanh-s1/\
            metrics.jsonl becomes the run tanh-s1), with -2, -3, … for repeated names. Then: tensorboard --logdir DIR.
            """)

    @Option(parsing: .upToNextOption, help: "metrics.jsonl files (written by train --metrics).")
    var metrics: [String]
    @Option(help: "Directory for the TensorBoard runs (one subdirectory per file).") var out: String

    func validate() throws {
        if metrics.isEmpty { throw ValidationError("--metrics needs at least one file") }
    }

    func run() throws {
        var used: Set<String> = []
        var failed = false
        for path in metrics {
            let base = Self.runName(path)
            var name = base, suffix = 2
            while used.contains(name) { name = "\(base)-\(suffix)"; suffix += 1 }
            used.insert(name)
            do {
                let file = try MetricsReader.read(path: path)
                for warning in file.warnings { FileSink.standardError.writeIgnoringErrors("note: \(warning)\n") }
                let directory = (out as NSString).appendingPathComponent(name)
                let run = try TensorBoardRun(directory: directory, resuming: false)
                // A record carries no time: the run's start date plus the epochs' wall times.
                var wallTime = Self.startTime(file.records) ?? Date().timeIntervalSince1970
                var count = 0
                for record in file.records {
                    if case .epoch(let e) = record, let seconds = e.wallSeconds { wallTime += seconds }
                    try run.append([record], wallTime: wallTime)
                    count += TensorBoardScalar.scalars(of: record, wallTime: wallTime).count
                }
                print("\(path) → \(directory): \(count) scalars")
            } catch {
                FileSink.standardError.writeIgnoringErrors("dcnet-dist: tensorboard: \(error)\n")
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }

    static func runName(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let parent = url.deletingLastPathComponent().lastPathComponent
        return parent.isEmpty || parent == "/" ? url.deletingPathExtension().lastPathComponent : parent
    }

    static func startTime(_ records: [MetricsRecord]) -> Double? {
        for case .config(let c) in records {
            if let date = c.date, let parsed = ISO8601DateFormatter().date(from: date) {
                return parsed.timeIntervalSince1970
            }
        }
        return nil
    }
}
