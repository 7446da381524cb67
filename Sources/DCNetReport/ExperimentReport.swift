import DCNetFormats
import DCNetMetrics
import Foundation

/// Writes `report.md` and its SVG plots for a suite of runs.
///
/// Expected layout: `<suiteDirectory>/<run>/metrics.jsonl` for every run named in the groups,
/// optionally `<suiteDirectory>/<run>/attacks.jsonl`. A run whose directory or metrics file does
/// not exist yet, cannot be read, or has no completed epoch is listed as missing. The header's
/// "Measured time" sums the epochs' `wall_s` of every run directory in the suite (each directory once,
/// however many links name it) and the attack and feature jobs of `<suite>/timings.tsv` when present;
/// the "Time per run" appendix lists each run's share.
///
/// Written to `outputDirectory` (default: the suite directory): `report.md`,
/// `<group>-accuracy.svg` and `<group>-loss.svg` per group (`<group>` is the group name made
/// file-name safe: per setting the mean over its seeds per epoch, with the min–max band over seeds;
/// validation accuracy when every run has validation records, else test accuracy),
/// `attack-<method>.svg` per attack method (e.g. `attack-fgsm.svg`, `attack-bim-10.svg`: accuracy
/// against ε per attacked setting and source, mean and band over seeds), and with ``features`` the
/// feature scatters the entries carry.
public struct ExperimentReport {
    public var suiteDirectory: URL
    public var groups: [ExperimentGroup]
    public var outputDirectory: URL?
    public var title = "DCNet experiment report"
    /// Free text describing the compute budget (epochs, nodes, hours); shown in the header.
    public var budget: String?
    /// The command that produced the suite (e.g. the suite script invocation).
    public var command: String?
    /// Test accuracies (fractions) for the "epochs to reach" columns.
    public var accuracyThresholds: [Double] = [0.5, 0.6, 0.7]
    /// Differences smaller than this (fraction, 0.005 = 0.5 percentage points) count as ties:
    /// each configuration is usually a single seed, and seed-to-seed spread on CIFAR is of that order.
    public var noiseMargin = 0.005
    /// Shown as the generation date; injectable so tests are reproducible.
    public var generatedAt = Date()
    /// The commit of the code that rendered the report, shown next to the generation date: the
    /// text of a report regenerated later may differ from the runs' own commits.
    public var reportCommit: String?
    /// The command line that rendered the report, when it differs from `command`.
    public var reportCommand: String?

    /// The run directories of each setting a group names: a setting trained with several seeds is
    /// `<setting>-s<seed>` per seed (see experiments/README.md). Settings not listed here are looked
    /// up on disk: `<setting>/` if it exists, else every `<setting>-s<N>/`, in seed order.
    public var replicates: [String: [String]] = [:]

    /// Penultimate-feature geometry per run directory (`report --features`; the caller reads the
    /// safetensors): it feeds the feature-separation claims and adds the feature-geometry section.
    /// Nil: no section, and separation claims are not evaluated.
    public var features: [String: FeatureGeometrySection.Entry]?
    /// The suite's pre-registered comparisons: listed first with their verdicts, and the groups that
    /// answer them come before the exploratory ones.
    public var preregistration: ExperimentSuite.Preregistration?

    public init(suiteDirectory: URL, groups: [ExperimentGroup]) {
        self.suiteDirectory = suiteDirectory
        self.groups = groups
    }

    public static let reportFileName = "report.md"

    /// What `write()` produced.
    public struct Output: Sendable {
        public let reportFile: URL
        public let plotFiles: [URL]
        /// Runs named in the groups without usable data, with the reason.
        public let missingRuns: [(run: String, reason: String)]
        public let markdown: String
    }

    /// A run's state as found on disk.
    enum RunState {
        case present(RunMetrics, RunSummary)
        case missing(String)

        var summary: RunSummary? { if case .present(_, let summary) = self { return summary }; return nil }
        var metrics: RunMetrics? { if case .present(let metrics, _) = self { return metrics }; return nil }
    }

    @discardableResult
    public func write() throws -> Output {
        let output = outputDirectory ?? suiteDirectory
        do {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(
                path: output.path, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        let (markdown, plots, missing) = render()
        var plotFiles: [URL] = []
        for (fileName, plot) in plots {
            let url = output.appendingPathComponent(fileName)
            try plot.write(to: url)
            plotFiles.append(url)
        }
        let reportFile = output.appendingPathComponent(ExperimentReport.reportFileName)
        try AtomicFile.write(markdown, to: reportFile.path)
        return Output(reportFile: reportFile, plotFiles: plotFiles, missingRuns: missing, markdown: markdown)
    }

    /// The Markdown text and the plots it links to (by file name), without touching the disk
    /// except to read the runs.
    public func render() -> (
        markdown: String, plots: [(fileName: String, plot: SVGPlot)], missing: [(run: String, reason: String)]
    ) {
        let settings = orderedUnique(groups.flatMap(\.runs))
        let resolved = Dictionary(uniqueKeysWithValues: settings.map { ($0, replicateNames(of: $0)) })
        let runNames = orderedUnique(settings.flatMap { resolved[$0]! })
        var states: [String: RunState] = [:]
        for run in runNames { states[run] = loadRun(run) }
        let missing = runNames.compactMap { run -> (run: String, reason: String)? in
            if case .missing(let reason) = states[run]! { return (run, reason) }
            return nil
        }

        // A seed still training would enter a verdict with its early numbers: when a setting has a
        // finished seed, its seeds in progress are left out (a setting with none finished keeps them,
        // and its verdict says after how many epochs).
        let seeds = resolved.mapValues { names in
            let finished = names.filter { states[$0]?.summary.map { !$0.isInProgress } ?? false }
            return (finished.isEmpty ? names : finished).compactMap { name in
                states[name]?.metrics.map {
                    Replicate(name: name, metrics: $0, featureGeometry: features?[name]?.geometry)
                }
            }
        }
        let evaluator = ClaimEvaluator(noiseMargin: noiseMargin, accuracyThresholds: accuracyThresholds)
        let training = trainingTimes(runNames: runNames, states: states)
        var markdown = header(
            runNames: runNames, states: states,
            measuredTime: measuredTimeLine(training, timings: SuiteTimings.read(suiteDirectory: suiteDirectory)))
        // Pre-registered groups first (in their order), then the rest: what was decided before the
        // runs is read before what was looked at after them.
        let groups = self.groups.filter(\.isPreregistered) + self.groups.filter { !$0.isPreregistered }
        let results = groups.map { evaluator.evaluate($0, replicates: seeds) }
        if let preregistration { markdown += Self.preregistrationSection(preregistration, results: results) }
        markdown += VerdictSummary.markdown(results)
        var plots: [(fileName: String, plot: SVGPlot)] = []
        var usedSlugs: Set<String> = []
        for (group, result) in zip(groups, results) {
            var slug = Markdown.slug(group.name)
            var suffix = 2
            while usedSlugs.contains(slug) { slug = Markdown.slug(group.name) + "-\(suffix)"; suffix += 1 }
            usedSlugs.insert(slug)
            let (section, groupPlots) = groupSection(
                group, slug: slug, states: states, result: result, replicates: resolved)
            markdown += section
            plots += groupPlots
        }
        let (attackMarkdown, attackPlots) = attackSection(
            runNames: runNames, states: states, settings: settings, seeds: seeds)
        markdown += attackMarkdown
        plots += attackPlots
        if let features {
            markdown += featureSection(features, runNames: runNames, replicates: resolved) + "\n"
            plots += features.values.sorted { $0.run < $1.run }.compactMap { e in
                guard let file = e.plotFile, let plot = e.plot else { return nil }
                return (file, plot)
            }
        }
        markdown += runsAppendix(runNames: runNames, states: states)
        let timeAppendix = timePerRunAppendix(training)
        if !timeAppendix.isEmpty { markdown += "\n" + timeAppendix }
        return (markdown, plots, missing)
    }

    /// The feature-geometry section: rows in report order (then any other run with features), and
    /// the first seed of each setting of a feature-separation group side by side, baseline first.
    func featureSection(
        _ features: [String: FeatureGeometrySection.Entry], runNames: [String], replicates: [String: [String]]
    ) -> String {
        let order = orderedUnique(runNames.filter { features[$0] != nil } + features.keys.sorted())
        let sideBySide = groups.filter { $0.test == .betterSeparation }.map { group in
            let settings = orderedUnique((group.baselineRun.map { [$0] } ?? []) + group.runs)
            let panels = settings.compactMap { setting -> FeatureGeometrySection.SideBySide.Panel? in
                // The first seed with a scatter stands for the setting.
                guard let run = (replicates[setting] ?? [setting]).first(where: { features[$0]?.plotFile != nil })
                else { return nil }
                return .init(run: run, label: run + (setting == group.baselineRun ? " (baseline)" : ""))
            }
            return FeatureGeometrySection.SideBySide(title: group.name, panels: panels)
        }
        return FeatureGeometrySection.markdown(order.map { features[$0]! }, sideBySide: sideBySide)
    }

    /// The registered comparisons, each with the verdicts of the groups that answer it.
    static func preregistrationSection(
        _ p: ExperimentSuite.Preregistration, results: [ClaimResult]
    ) -> String {
        var lines = ["## Pre-registered comparisons", ""]
        var intro = "Written into the suite definition before its first run"
        if let registered = p.registered { intro += " (\(registered))" }
        intro += "; the verdicts below them are computed from the runs as registered."
        if let rule = p.rule { intro += " Rule: \(rule)." }
        lines += [Markdown.text(intro), ""]
        lines += [
            "| ID | Comparison | Quantity | Registered direction | Seeds | Verdicts |", "|---|---|---|---|---|---|",
        ]
        for c in p.comparisons {
            let answering = results.filter { r in
                guard let id = r.group.registration, r.group.isPreregistered else { return false }
                return c.id == id || (c.id.hasPrefix(id) && c.id.dropFirst(id.count).allSatisfy(\.isLetter))
            }
            var verdicts: [String] = []
            for r in answering {
                switch r.outcome {
                case .comparisons(let comparisons):
                    for x in comparisons {
                        let pair = x.baseline.map { "\(x.candidate) vs \($0)" } ?? x.candidate
                        let quantity = x.replicates.map { " (" + VerdictSummary.quantity($0.measure) + ")" } ?? ""
                        verdicts.append("\(pair)\(quantity): \(VerdictSummary.word(x.verdict))")
                    }
                default:
                    verdicts.append("not evaluated yet")
                }
            }
            if verdicts.isEmpty { verdicts = ["no group answers it"] }
            let cells = [
                c.id, c.name, c.quantity, c.direction, c.seeds.map(String.init).joined(separator: ", "),
                verdicts.joined(separator: "; "),
            ]
            lines.append("| " + cells.map(Markdown.cell).joined(separator: " | ") + " |")
        }
        if let exploratory = p.exploratory, !exploratory.isEmpty {
            lines += [
                "", "Exploratory (not registered; read as hypotheses): " + exploratory.joined(separator: "; ") + ".",
            ]
        }
        return lines.joined(separator: "\n") + "\n\n"
    }

    // MARK: - Loading

    /// The run directories of `setting`: listed in `replicates`, else found on disk.
    func replicateNames(of setting: String) -> [String] {
        if let listed = replicates[setting], !listed.isEmpty { return listed }
        let manager = FileManager.default
        if manager.fileExists(atPath: suiteDirectory.appendingPathComponent(setting).path) { return [setting] }
        let prefix = setting + "-s"
        let seeded = ((try? manager.contentsOfDirectory(atPath: suiteDirectory.path)) ?? [])
            .compactMap { name -> (Int, String)? in
                guard name.hasPrefix(prefix), let seed = Int(name.dropFirst(prefix.count)) else { return nil }
                return (seed, name)
            }
            .sorted { $0.0 < $1.0 }
        return seeded.isEmpty ? [setting] : seeded.map(\.1)
    }

    func loadRun(_ run: String) -> RunState {
        let directory = suiteDirectory.appendingPathComponent(run)
        let metricsPath = directory.appendingPathComponent(MetricsLog.metricsFileName).path
        guard FileManager.default.fileExists(atPath: metricsPath) else {
            return .missing("no \(MetricsLog.metricsFileName) yet")
        }
        do {
            let metrics = try MetricsLog.read(runDirectory: directory)
            if metrics.epochs.isEmpty {
                let step = metrics.progress.last.map { ", at step \($0.step)" } ?? ""
                return .missing("no completed epoch yet\(step)")
            }
            return .present(metrics, RunSummary(metrics))
        } catch {
            return .missing("unreadable: \(error)")
        }
    }

    // MARK: - Header

    private func header(runNames: [String], states: [String: RunState], measuredTime: String) -> String {
        let present = runNames.filter { states[$0]?.summary != nil }
        let configs = present.compactMap { states[$0]!.metrics!.latestConfig }
        var lines = ["# \(title)", ""]
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        lines.append("- **Generated:** \(formatter.string(from: generatedAt))")
        if let reportCommit { lines.append("- **Report commit:** `\(reportCommit)`") }
        if let reportCommand {
            lines.append("- **Report command:** `\(reportCommand.replacingOccurrences(of: "`", with: "'"))`")
        }
        lines.append("- **Suite:** `\(suiteDirectory.path)`")
        if let command { lines.append("- **Command:** `\(Markdown.codeSpan(command))`") }

        // Commit: one line when all runs agree, otherwise each commit with its runs.
        var runsByCommit: [String: [String]] = [:]
        for run in present {
            let commit = states[run]!.metrics!.latestConfig?.commit ?? "unknown"
            runsByCommit[commit, default: []].append(run)
        }
        switch runsByCommit.count {
        case 0: lines.append("- **Commit:** unknown (no completed runs)")
        case 1: lines.append("- **Commit:** `\(runsByCommit.keys.first!)` (all runs)")
        default:
            let parts = runsByCommit.keys.sorted().map { "`\($0)` (\(runsByCommit[$0]!.joined(separator: ", ")))" }
            lines.append("- **Commit:** runs come from different commits: \(parts.joined(separator: "; "))")
        }
        let dates = configs.compactMap(\.date).sorted()
        if let first = dates.first, let last = dates.last {
            lines.append("- **Runs started:** \(first == last ? first : "\(first) – \(last)")")
        }
        var budgetParts: [String] = []
        let completed = present.map { states[$0]!.summary!.epochsCompleted }
        if let low = completed.min(), let high = completed.max() {
            budgetParts.append("completed epochs per run: \(low == high ? "\(low)" : "\(low)–\(high)")")
        }
        let planned = Set(present.compactMap { states[$0]!.summary!.epochsPlanned })
        if !planned.isEmpty {
            budgetParts.append("configured epochs: \(planned.sorted().map(String.init).joined(separator: ", "))")
        }
        lines.append("- **Budget:** \(Self.budgetText(budget, budgetParts))")
        lines.append(measuredTime)
        lines.append("- **Runs:** \(present.count) of \(runNames.count) with results")
        lines.append("")

        let missing = runNames.compactMap { run -> String? in
            if case .missing(let reason) = states[run]! { return "- `\(run)`: \(reason)" }
            return nil
        }
        if !missing.isEmpty {
            lines += ["**Missing runs** (not finished or not started; left out of tables and plots):", ""]
            lines += missing
            lines.append("")
        }
        lines += sharedConfiguration(present: present, states: states)
        return lines.joined(separator: "\n") + "\n"
    }

    /// The budget text, then the recorded epoch counts: after "; ", or as a new sentence when the text
    /// already ends one (no ".;").
    static func budgetText(_ budget: String?, _ parts: [String]) -> String {
        let text = budget?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !parts.isEmpty else { return text.isEmpty ? "not recorded" : text }
        let recorded = parts.joined(separator: "; ")
        guard let last = text.last else { return recorded }
        guard ".!?".contains(last) else { return text + "; " + recorded }
        return text + " " + recorded.prefix(1).uppercased() + recorded.dropFirst() + "."
    }

    /// Config values every completed run agrees on: the common training setup.
    private func sharedConfiguration(present: [String], states: [String: RunState]) -> [String] {
        let objects = present.compactMap { run -> [String: JSONValue]? in
            if case .object(let members)? = states[run]!.metrics!.latestConfig?.config { return members }
            return nil
        }
        guard objects.count == present.count, let first = objects.first else { return [] }
        let shared = first.keys.sorted().filter { key in objects.allSatisfy { $0[key] == first[key] } }
        guard !shared.isEmpty else { return [] }
        var lines = ["Configuration shared by all runs:", "", "| Setting | Value |", "|---|---|"]
        for key in shared {
            lines.append("| \(Markdown.cell(key)) | \(Markdown.cell(first[key]!.description)) |")
        }
        lines.append("")
        return lines
    }

}
