import Foundation

/// `<suite>/timings.tsv`, written by scripts/experiments: one line per finished job,
/// `kind<TAB>run<TAB>method<TAB>targets<TAB>seconds<TAB>date`, with kind `train`, `attack` or `features`
/// (`method` and `targets` are empty for train and features; `targets` lists an attack's transfer targets,
/// separated by spaces). Older suites have no such file.
public struct SuiteTimings: Sendable, Equatable {
    public static let fileName = "timings.tsv"

    public struct Job: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable { case train, attack, features }
        public var kind: Kind
        public var run: String
        public var method: String
        public var targets: String
        public var seconds: Double
        public var date: String
    }

    /// One job per (kind, run, method, targets), in the order of their first line: a job that was run
    /// again (e.g. an attack rerun with another image count replaces the earlier one) keeps its last line.
    public var jobs: [Job]
    /// 1-based numbers of the lines that were not such a job (wrong field count, unknown kind, a
    /// duration that is not a non-negative number, no run name); they are left out.
    public var malformedLines: [Int]

    public init(jobs: [Job] = [], malformedLines: [Int] = []) {
        self.jobs = jobs
        self.malformedLines = malformedLines
    }

    /// Parses the file's text. Blank lines are skipped silently.
    public static func parse(_ text: String) -> SuiteTimings {
        var jobs: [Job] = []
        var index: [[String]: Int] = [:]
        var malformed: [Int] = []
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy(\.isWhitespace) { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 6, let kind = Job.Kind(rawValue: fields[0]), !fields[1].isEmpty,
                let seconds = Double(fields[4]), seconds.isFinite, seconds >= 0
            else {
                malformed.append(offset + 1)
                continue
            }
            let job = Job(
                kind: kind, run: fields[1], method: fields[2], targets: fields[3], seconds: seconds, date: fields[5])
            let key = [fields[0], fields[1], fields[2], fields[3]]
            // The last line of a repeated job replaces the earlier ones.
            if let existing = index[key] { jobs[existing] = job } else { index[key] = jobs.count; jobs.append(job) }
        }
        return SuiteTimings(jobs: jobs, malformedLines: malformed)
    }

    /// Reads `<suiteDirectory>/timings.tsv`; nil when the file does not exist or cannot be read.
    public static func read(suiteDirectory: URL) -> SuiteTimings? {
        let url = suiteDirectory.appendingPathComponent(fileName)
        guard let data = try? Data(contentsOf: url) else { return nil }
        return parse(String(decoding: data, as: UTF8.self))
    }

    /// The jobs of one kind.
    public func jobs(_ kind: Job.Kind) -> [Job] { jobs.filter { $0.kind == kind } }

    /// Total seconds of the jobs of one kind.
    public func seconds(_ kind: Job.Kind) -> Double { jobs(kind).reduce(0) { $0 + $1.seconds } }
}

/// The training time of the suite's run directories, each counted once.
struct TrainingTimes {
    struct Run {
        /// The directory's name in the suite (a real directory when there is one).
        let name: String
        /// Other names of the same directory: symbolic links to it in the suite.
        let aliases: [String]
        /// False for a run directory that no group of the report names (e.g. a select step's grid run).
        let inGroups: Bool
        let epochs: Int
        /// The sum of the epochs' `wall_s` (training and its evaluation), over the resolved epoch
        /// records: after a resume, the last record of each epoch.
        let seconds: Double
        /// Epochs without a usable `wall_s` (older metrics, non-finite or negative values): not counted.
        let epochsWithoutWallTime: Int
        let medianImagesPerSecond: Double?
    }

    let runs: [Run]

    var seconds: Double { runs.reduce(0) { $0 + $1.seconds } }
    var epochsWithoutWallTime: Int { runs.reduce(0) { $0 + $1.epochsWithoutWallTime } }
}

extension ExperimentReport {
    /// The runs whose training time the report states: the report's runs with results, then any other
    /// directory of the suite with a `metrics.jsonl` and a completed epoch (a select step's grid runs),
    /// one entry per directory: a symbolic link to a run directory that is also in the suite is that
    /// run, not a second one.
    func trainingTimes(runNames: [String], states: [String: RunState]) -> TrainingTimes {
        let manager = FileManager.default
        let listed = Set(runNames)
        let others = ((try? manager.contentsOfDirectory(atPath: suiteDirectory.path)) ?? []).sorted()
            .filter { name in
                !name.hasPrefix(".") && !listed.contains(name)
                    && manager.fileExists(
                        atPath: suiteDirectory.appendingPathComponent(name)
                            .appendingPathComponent(MetricsLog.metricsFileName).path)
            }
        struct Member { let name: String; let isLink: Bool; let summary: RunSummary; let metrics: RunMetrics }
        var order: [String] = []
        var members: [String: [Member]] = [:]
        for name in runNames + others {
            let state = listed.contains(name) ? states[name] ?? loadRun(name) : loadRun(name)
            guard case .present(let metrics, let summary) = state else { continue }
            let path = suiteDirectory.appendingPathComponent(name).path
            let isLink = (try? manager.destinationOfSymbolicLink(atPath: path)) != nil
            let canonical = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
            if members[canonical] == nil { order.append(canonical) }
            members[canonical, default: []].append(
                Member(name: name, isLink: isLink, summary: summary, metrics: metrics))
        }
        let runs = order.map { canonical -> TrainingTimes.Run in
            let group = members[canonical]!
            let primary = group.first { !$0.isLink } ?? group[0]
            let walls = primary.metrics.epochs.map(\.wallSeconds)
            let usable = walls.compactMap { $0 }.filter { $0.isFinite && $0 >= 0 }
            return TrainingTimes.Run(
                name: primary.name, aliases: group.map(\.name).filter { $0 != primary.name },
                inGroups: group.contains { listed.contains($0.name) }, epochs: primary.summary.epochsCompleted,
                seconds: usable.reduce(0, +), epochsWithoutWallTime: walls.count - usable.count,
                medianImagesPerSecond: primary.summary.medianImagesPerSecond)
        }
        return TrainingTimes(runs: runs)
    }

    /// The header's "Measured time" item.
    func measuredTimeLine(_ training: TrainingTimes, timings: SuiteTimings?) -> String {
        func hours(_ seconds: Double) -> String { Markdown.number(seconds / 3600, decimals: 2) + " h" }
        func minutes(_ seconds: Double) -> String { Markdown.number(seconds / 60, decimals: 1) + " min" }
        func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
        let outside = training.runs.filter { !$0.inGroups }.count
        var trainingText = "training \(hours(training.seconds)) (\(count(training.runs.count, "run"))"
        if outside > 0 { trainingText += ", \(outside) of them in no group of the report" }
        trainingText += ")"
        var text: String
        var notes: [String] = []
        if let timings {
            let attacks = timings.jobs(.attack)
            let features = timings.jobs(.features)
            let total = training.seconds + timings.seconds(.attack) + timings.seconds(.features)
            text =
                "\(trainingText) + attacks \(hours(timings.seconds(.attack))) (\(count(attacks.count, "job"))) "
                + "+ feature export \(minutes(timings.seconds(.features))) (\(count(features.count, "export"))) "
                + "= **\(hours(total))**."
            if !timings.malformedLines.isEmpty {
                let shown = timings.malformedLines.prefix(5).map(String.init).joined(separator: ", ")
                let more = timings.malformedLines.count > 5 ? ", …" : ""
                let n = timings.malformedLines.count
                notes.append(
                    "\(count(n, "malformed line")) of `\(SuiteTimings.fileName)` ignored (line\(n == 1 ? "" : "s") "
                        + "\(shown)\(more)).")
            }
        } else {
            text =
                "\(trainingText) = **\(hours(training.seconds))**; attacks and feature export not recorded "
                + "(no `\(SuiteTimings.fileName)`: an older suite)."
        }
        if training.epochsWithoutWallTime > 0 {
            notes.append("\(count(training.epochsWithoutWallTime, "epoch")) without a `wall_s` record not counted.")
        }
        text +=
            " Wall times on the machine that ran them, slowed by anything else running there. Training is the sum "
            + "of each run's epoch times (`wall_s`: training and its evaluation; a re-run epoch counts once, a linked "
            + "run directory once)"
            + (timings == nil
                ? "."
                : "; attacks and feature exports are the jobs' times in `\(SuiteTimings.fileName)` (a job run "
                    + "again counts once, with its last time).")
        if !training.runs.isEmpty { text += " Per run: “Time per run” at the end." }
        return "- **Measured time:** " + ([text] + notes).joined(separator: " ")
    }

    /// The appendix table of each run's training time and speed.
    func timePerRunAppendix(_ training: TrainingTimes) -> String {
        guard !training.runs.isEmpty else { return "" }
        var lines = [
            "## Time per run", "",
            "| Run | Epochs | Training (min) | Images/s (median) |", "|---|---:|---:|---:|",
        ]
        for run in training.runs {
            var label = Markdown.cell(run.name)
            if !run.aliases.isEmpty {
                label += " (also " + run.aliases.map { Markdown.cell($0) }.joined(separator: ", ") + ": a link)"
            }
            if !run.inGroups { label += " (in no group)" }
            var minutes = Markdown.number(run.seconds / 60, decimals: 1)
            if run.epochsWithoutWallTime > 0 {
                let n = run.epochsWithoutWallTime
                minutes += " (\(n) epoch\(n == 1 ? "" : "s") without `wall_s`)"
            }
            let speed = run.medianImagesPerSecond.map { Markdown.number($0, decimals: 1) } ?? "—"
            lines.append("| \(label) | \(run.epochs) | \(minutes) | \(speed) |")
        }
        lines += [
            "",
            "_Training: the sum of the run's epoch wall times (`wall_s`, training and its evaluation), on the machine "
                + "that ran it and slowed by anything else running there; images/s: the median over its epochs._",
            "",
        ]
        return lines.joined(separator: "\n")
    }
}
