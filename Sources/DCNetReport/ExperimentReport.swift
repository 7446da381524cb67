import Foundation

/// Writes `report.md` and its SVG plots for a suite of runs.
///
/// Expected layout: `<suiteDirectory>/<run>/metrics.jsonl` for every run named in the groups,
/// optionally `<suiteDirectory>/<run>/attacks.jsonl`. A run whose directory or metrics file does
/// not exist yet, cannot be read, or has no completed epoch is listed as missing.
///
/// Written to `outputDirectory` (default: the suite directory): `report.md`,
/// `<group>-accuracy.svg` and `<group>-loss.svg` per group (`<group>` is the group name made
/// file-name safe), and `attack-<method>-<mode>.svg` per attack method and mode.
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
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let (markdown, plots, missing) = render()
        var plotFiles: [URL] = []
        for (fileName, plot) in plots {
            let url = output.appendingPathComponent(fileName)
            try plot.write(to: url)
            plotFiles.append(url)
        }
        let reportFile = output.appendingPathComponent(ExperimentReport.reportFileName)
        try Data(markdown.utf8).write(to: reportFile, options: .atomic)
        return Output(reportFile: reportFile, plotFiles: plotFiles, missingRuns: missing, markdown: markdown)
    }

    /// The Markdown text and the plots it links to (by file name), without touching the disk
    /// except to read the runs.
    public func render() -> (
        markdown: String, plots: [(fileName: String, plot: SVGPlot)], missing: [(run: String, reason: String)]
    ) {
        let runNames = orderedUnique(groups.flatMap(\.runs))
        var states: [String: RunState] = [:]
        for run in runNames { states[run] = loadRun(run) }
        let missing = runNames.compactMap { run -> (run: String, reason: String)? in
            if case .missing(let reason) = states[run]! { return (run, reason) }
            return nil
        }

        var markdown = header(runNames: runNames, states: states)
        var plots: [(fileName: String, plot: SVGPlot)] = []
        var usedSlugs: Set<String> = []
        for group in groups {
            var slug = Markdown.slug(group.name)
            var suffix = 2
            while usedSlugs.contains(slug) { slug = Markdown.slug(group.name) + "-\(suffix)"; suffix += 1 }
            usedSlugs.insert(slug)
            let (section, groupPlots) = groupSection(group, slug: slug, states: states)
            markdown += section
            plots += groupPlots
        }
        let (attackMarkdown, attackPlots) = attackSection(runNames: runNames, states: states)
        markdown += attackMarkdown
        plots += attackPlots
        markdown += runsAppendix(runNames: runNames, states: states)
        return (markdown, plots, missing)
    }

    // MARK: - Loading

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

    private func header(runNames: [String], states: [String: RunState]) -> String {
        let present = runNames.filter { states[$0]?.summary != nil }
        let configs = present.compactMap { states[$0]!.metrics!.latestConfig }
        var lines = ["# \(title)", ""]
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        lines.append("- **Generated:** \(formatter.string(from: generatedAt))")
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
        if let budget { budgetParts.append(budget) }
        let completed = present.map { states[$0]!.summary!.epochsCompleted }
        if let low = completed.min(), let high = completed.max() {
            budgetParts.append("completed epochs per run: \(low == high ? "\(low)" : "\(low)–\(high)")")
        }
        let planned = Set(present.compactMap { states[$0]!.summary!.epochsPlanned })
        if !planned.isEmpty {
            budgetParts.append("configured epochs: \(planned.sorted().map(String.init).joined(separator: ", "))")
        }
        lines.append("- **Budget:** \(budgetParts.isEmpty ? "not recorded" : budgetParts.joined(separator: "; "))")
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

    // MARK: - Groups

    private func groupSection(
        _ group: ExperimentGroup, slug: String,
        states: [String: RunState]
    ) -> (String, [(fileName: String, plot: SVGPlot)]) {
        var lines = ["## \(Markdown.text(group.name))", "", "**Paper's claim:** \(Markdown.text(group.claim))", ""]

        // Table.
        let thresholdHeaders = accuracyThresholds.map { "Epochs to \(Markdown.percent($0, decimals: 0))" }
        let headers =
            ["Run", "Epochs", "Final test acc.", "Best test acc. (epoch)"] + thresholdHeaders
            + ["Images/s (median)", "Final train loss"]
        lines.append("| " + headers.joined(separator: " | ") + " |")
        lines.append("|" + headers.indices.map { $0 == 0 ? "---" : "---:" }.joined(separator: "|") + "|")
        for run in group.runs {
            let label = Markdown.cell(run) + (run == group.baselineRun && group.runs.count > 1 ? " (baseline)" : "")
            guard let summary = states[run]?.summary else {
                let reason: String
                if case .missing(let why)? = states[run] { reason = why } else { reason = "missing" }
                lines.append(
                    "| \(label) | missing: \(Markdown.cell(reason)) |"
                        + String(repeating: " — |", count: headers.count - 2))
                continue
            }
            var epochs = "\(summary.epochsCompleted)"
            if let planned = summary.epochsPlanned, planned > summary.epochsCompleted {
                epochs += " of \(planned)"
            }
            if summary.diverged { epochs += " (diverged)" }
            let best = summary.bestTestAccuracy.map { "\(Markdown.percent($0)) (\(summary.bestEpoch!))" } ?? "—"
            let reach = accuracyThresholds.map { threshold in summary.epochToReach(threshold).map(String.init) ?? "—" }
            let cells =
                [label, epochs, summary.finalTestAccuracy.map { Markdown.percent($0) } ?? "—", best] + reach
                + [
                    summary.medianImagesPerSecond.map { String(format: "%.1f", $0) } ?? "—",
                    summary.finalTrainLoss.map { Markdown.number($0, decimals: 3) } ?? "—",
                ]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        lines.append("")

        // Plots.
        let present = group.runs.filter { states[$0]?.summary != nil }
        var accuracyPlot = SVGPlot(
            title: "\(group.name): test accuracy", xLabel: "epoch", yLabel: "test accuracy (%)",
            series: present.map { run in
                SVGPlot.Series(
                    name: run,
                    points: states[run]!.metrics!.epochs.map {
                        SVGPlot.Point(x: Double($0.epoch), y: ($0.testAccuracy ?? .nan) * 100)
                    })
            })
        accuracyPlot.integerX = true
        var lossPlot = SVGPlot(
            title: "\(group.name): training loss", xLabel: "epoch", yLabel: "training loss",
            series: present.map { run in
                SVGPlot.Series(
                    name: run,
                    points: states[run]!.metrics!.epochs.map {
                        SVGPlot.Point(x: Double($0.epoch), y: $0.trainLoss ?? .nan)
                    })
            })
        lossPlot.integerX = true
        let accuracyFile = "\(slug)-accuracy.svg"
        let lossFile = "\(slug)-loss.svg"
        lines.append("![\(Markdown.altText(group.name)): test accuracy per epoch](\(accuracyFile))")
        lines.append("![\(Markdown.altText(group.name)): training loss per epoch](\(lossFile))")
        lines.append("")

        // Verdict.
        lines.append("**Verdict:**")
        lines.append("")
        lines += verdicts(for: group, states: states).map { "- \($0)" }
        lines.append("")
        lines.append(
            "_Single run per configuration: differences within ±\(Markdown.points(noiseMargin)) are treated as ties._")
        lines.append("")
        return (lines.joined(separator: "\n") + "\n", [(accuracyFile, accuracyPlot), (lossFile, lossPlot)])
    }

    // MARK: - Verdicts

    func verdicts(for group: ExperimentGroup, states: [String: RunState]) -> [String] {
        guard let baseline = group.baselineRun else { return ["No runs in this group."] }
        let candidates = group.candidateRuns
        if case .reachesAccuracy(let target) = group.test {
            // Absolute claim: the baseline is context, not a comparison partner.
            let runs = candidates.isEmpty ? [baseline] : candidates
            return runs.map { reachVerdict(run: $0, target: target, states: states) }
        }
        guard !candidates.isEmpty else { return ["Only one run (`\(baseline)`): nothing to compare."] }
        guard let baseSummary = states[baseline]?.summary else {
            return ["Cannot be evaluated yet: the baseline run `\(baseline)` is missing."]
        }
        return candidates.map { candidate in
            guard let summary = states[candidate]?.summary else {
                return "\(candidate) vs \(baseline): cannot be evaluated yet, `\(candidate)` is missing."
            }
            switch group.test {
            case .fasterConvergence:
                return convergenceVerdict(candidate, summary, baseline, baseSummary)
            case .higherAccuracy:
                return accuracyVerdict(candidate, summary, baseline, baseSummary)
            case .noHigherAccuracy:
                return accuracyVerdict(candidate, summary, baseline, baseSummary, claimsHigher: false)
            case .moreRobust:
                return robustnessVerdict(candidate, states[candidate]!.metrics!, baseline, states[baseline]!.metrics!)
            case .reachesAccuracy:
                preconditionFailure("handled above")
            }
        }
    }

    private func convergenceVerdict(
        _ candidate: String, _ summary: RunSummary,
        _ baseline: String, _ baseSummary: RunSummary
    ) -> String {
        let common = Set(summary.epochNumbers).intersection(baseSummary.epochNumbers).sorted()
        guard let lastCommon = common.last else {
            return "\(candidate) vs \(baseline): no epochs in common, cannot compare."
        }
        // Epochs whose evaluation lagged training in either run are left out of the mean (and named).
        let lagging = common.filter {
            summary.evaluationLagsTraining(atEpoch: $0) || baseSummary.evaluationLagsTraining(atEpoch: $0)
        }
        let pairs = finitePairs(common.filter { !lagging.contains($0) }, summary.testAccuracy, baseSummary.testAccuracy)
        guard !pairs.isEmpty else {
            return "\(candidate) vs \(baseline): no test accuracies in common, cannot compare."
        }
        let meanCandidate = pairs.map(\.0).reduce(0, +) / Double(pairs.count)
        let meanBaseline = pairs.map(\.1).reduce(0, +) / Double(pairs.count)
        let atEnd = (summary.testAccuracy(atEpoch: lastCommon), baseSummary.testAccuracy(atEpoch: lastCommon))

        var text =
            "\(candidate) vs \(baseline) after \(lastCommon) epoch\(lastCommon == 1 ? "" : "s"): "
            + "\(Markdown.percent(atEnd.0)) vs \(Markdown.percent(atEnd.1)) test accuracy; "
            + (pairs.count == common.count
                ? "mean over epochs \(common.first!)–\(lastCommon): "
                : "mean over the \(pairs.count) comparable epochs: ")
            + "\(Markdown.percent(meanCandidate)) vs \(Markdown.percent(meanBaseline))"
        // Quote the highest threshold either run reached within the common budget.
        if let threshold = accuracyThresholds.sorted().last(where: {
            summary.epochToReach($0, withinEpochs: lastCommon) != nil
                || baseSummary.epochToReach($0, withinEpochs: lastCommon) != nil
        }) {
            func reached(_ s: RunSummary) -> String {
                s.epochToReach(threshold, withinEpochs: lastCommon).map(String.init) ?? "not reached"
            }
            text +=
                "; epochs to reach \(Markdown.percent(threshold, decimals: 0)): \(reached(summary)) vs \(reached(baseSummary))"
        }
        let losses = finitePairs(common, summary.trainLoss, baseSummary.trainLoss)
        if !losses.isEmpty {
            let n = Double(losses.count)
            text +=
                "; mean training loss \(String(format: "%.3f", losses.map(\.0).reduce(0, +) / n)) vs "
                + "\(String(format: "%.3f", losses.map(\.1).reduce(0, +) / n))"
        }
        if !lagging.isEmpty {
            let which = lagging.map(String.init).joined(separator: ", ")
            text +=
                " (epoch\(lagging.count == 1 ? "" : "s") \(which) left out of the mean: test accuracy below 60% of the "
                + "training accuracy, i.e. evaluation statistics not yet settled, not a network that has not learned)"
        }
        let difference = meanCandidate - meanBaseline
        if difference > noiseMargin {
            text += " — supports the paper's claim of faster convergence at this budget."
        } else if difference < -noiseMargin {
            text +=
                " — the paper's claim of faster convergence does not hold at this budget: the baseline learns faster."
        } else {
            text +=
                " — no difference beyond ±\(Markdown.points(noiseMargin)); the paper's claim of faster convergence is not supported at this budget."
        }
        return text
    }

    /// (candidate, baseline) values at each of `epochs` where both are recorded and finite.
    private func finitePairs(
        _ epochs: [Int], _ candidate: (Int) -> Double?,
        _ baseline: (Int) -> Double?
    ) -> [(Double, Double)] {
        epochs.compactMap { epoch in
            guard let a = candidate(epoch), let b = baseline(epoch), a.isFinite, b.isFinite else { return nil }
            return (a, b)
        }
    }

    /// `claimsHigher`: the paper claims the candidate is more accurate; otherwise that it is not.
    private func accuracyVerdict(
        _ candidate: String, _ summary: RunSummary,
        _ baseline: String, _ baseSummary: RunSummary, claimsHigher: Bool = true
    ) -> String {
        guard let best = summary.bestTestAccuracy, let baseBest = baseSummary.bestTestAccuracy else {
            return "\(candidate) vs \(baseline): no test accuracy recorded, cannot compare."
        }
        var text =
            "\(candidate) vs \(baseline): best test accuracy \(Markdown.percent(best)) vs \(Markdown.percent(baseBest))"
        if let final = summary.finalTestAccuracy, let baseFinal = baseSummary.finalTestAccuracy {
            text += " (final \(Markdown.percent(final)) vs \(Markdown.percent(baseFinal)))"
        }
        if summary.epochsCompleted != baseSummary.epochsCompleted {
            text += ", unequal budgets: \(summary.epochsCompleted) vs \(baseSummary.epochsCompleted) epochs"
        }
        let (ahead, behind, tie) =
            claimsHigher
            ? (
                "supports the paper's claim of higher accuracy.",
                "the paper's claim of higher accuracy does not hold here: the baseline is more accurate.",
                "the paper's claim of higher accuracy is not supported."
            )
            : (
                "the paper's claim that it does not help does not hold here: it is more accurate.",
                "supports the paper's claim that it does not help: it is less accurate.",
                "supports the paper's claim that it does not help."
            )
        let difference = best - baseBest
        if difference > noiseMargin {
            text += " — " + ahead
        } else if difference < -noiseMargin {
            text += " — " + behind
        } else {
            text += " — no difference beyond ±\(Markdown.points(noiseMargin)); " + tie
        }
        return text
    }

    private func reachVerdict(run: String, target: Double, states: [String: RunState]) -> String {
        guard let summary = states[run]?.summary else {
            return "\(run): cannot be evaluated yet, the run is missing."
        }
        let best = summary.bestTestAccuracy
        let bestText = best.map { Markdown.percent($0) } ?? "no test accuracy"
        let targetText = Markdown.percent(target, decimals: 0)
        if let best, best >= target {
            let epoch = summary.epochToReach(target).map { " (first at epoch \($0))" } ?? ""
            return "\(run): best test accuracy \(bestText), reaches \(targetText)\(epoch) — supports the paper's claim."
        }
        let reason = summary.diverged ? " and its loss diverged" : ""
        let budget =
            summary.epochsPlanned.map {
                $0 > summary.epochsCompleted ? " after \(summary.epochsCompleted) of \($0) epochs" : ""
            }
            ?? " after \(summary.epochsCompleted) epochs"
        return
            "\(run): best test accuracy \(bestText)\(budget), below \(targetText)\(reason) — the paper's claim does not hold at this budget."
    }

    private func robustnessVerdict(
        _ candidate: String, _ metrics: RunMetrics,
        _ baseline: String, _ baseMetrics: RunMetrics
    ) -> String {
        let ours = AttackTable.latest(metrics.attacks)
        let theirs = AttackTable.latest(baseMetrics.attacks)
        let shared = ours.keys.filter { theirs[$0] != nil }.sorted()
        guard !shared.isEmpty else {
            return
                "\(candidate) vs \(baseline): no attack results for the same method, mode and epsilon — cannot be evaluated."
        }
        var ahead = 0, behind = 0
        var sumOurs = 0.0, sumTheirs = 0.0
        for key in shared {
            let difference = ours[key]!.adversarialAccuracy - theirs[key]!.adversarialAccuracy
            if difference > noiseMargin { ahead += 1 } else if difference < -noiseMargin { behind += 1 }
            sumOurs += ours[key]!.adversarialAccuracy
            sumTheirs += theirs[key]!.adversarialAccuracy
        }
        let count = Double(shared.count)
        var text =
            "\(candidate) vs \(baseline) under \(shared.count) matched attack setting\(shared.count == 1 ? "" : "s"): "
            + "mean adversarial accuracy \(Markdown.percent(sumOurs / count)) vs \(Markdown.percent(sumTheirs / count)); "
            + "ahead in \(ahead), behind in \(behind), tied in \(shared.count - ahead - behind)"
        if ahead > 0 && behind == 0 {
            text += " — supports the paper's claim of stronger robustness."
        } else if behind > 0 && ahead == 0 {
            text += " — the paper's claim of stronger robustness does not hold: the baseline is more robust."
        } else if ahead > 0 {
            text += " — mixed: the paper's claim of stronger robustness holds only for some attack settings."
        } else {
            text +=
                " — no difference beyond ±\(Markdown.points(noiseMargin)); the paper's claim of stronger robustness is not supported."
        }
        return text
    }

    // MARK: - Attacks

    private func attackSection(runNames: [String], states: [String: RunState]) -> (
        String, [(fileName: String, plot: SVGPlot)]
    ) {
        let perRun = runNames.compactMap { run -> (String, [AttackTable.Key: AttackRecord])? in
            guard let attacks = states[run]?.metrics?.attacks, !attacks.isEmpty else { return nil }
            return (run, AttackTable.latest(attacks))
        }
        guard !perRun.isEmpty else { return ("", []) }
        var lines = [
            "## Adversarial robustness", "",
            "Accuracy on perturbed test images; ε is the L∞ budget in pixel units (0–255). "
                + "White-box attacks are crafted on the model itself, black-box attacks on the source model and transferred.",
            "",
        ]
        var plots: [(fileName: String, plot: SVGPlot)] = []
        let settings = Set(perRun.flatMap { $0.1.keys.map(\.setting) }).sorted()
        var usedFiles: Set<String> = []
        for setting in settings {
            // Rows: one per (model, source); columns: clean accuracy then each epsilon.
            struct Row { let label: String; var byEpsilon: [Double: AttackRecord] }
            var rows: [Row] = []
            for (run, table) in perRun {
                let keys = table.keys.filter { $0.setting == setting }
                for source in orderedUnique(keys.map { $0.source ?? "" }) {
                    let label = source.isEmpty ? run : "\(run) ← \(source)"
                    var byEpsilon: [Double: AttackRecord] = [:]
                    for key in keys where (key.source ?? "") == source { byEpsilon[key.epsilonPixels] = table[key]! }
                    rows.append(Row(label: label, byEpsilon: byEpsilon))
                }
            }
            let epsilons = Set(rows.flatMap(\.byEpsilon.keys)).sorted()
            lines.append("### \(setting.title)")
            lines.append("")
            let headers =
                ["Model", "Clean"] + epsilons.map { "ε = \(Markdown.number($0, decimals: $0 == $0.rounded() ? 0 : 2))" }
            lines.append("| " + headers.joined(separator: " | ") + " |")
            lines.append("|---|" + Array(repeating: "---:", count: headers.count - 1).joined(separator: "|") + "|")
            for row in rows {
                let clean = row.byEpsilon.values.compactMap(\.cleanAccuracy).first
                let cells =
                    [Markdown.cell(row.label), clean.map { Markdown.percent($0) } ?? "—"]
                    + epsilons.map { row.byEpsilon[$0].map { Markdown.percent($0.adversarialAccuracy) } ?? "—" }
                lines.append("| " + cells.joined(separator: " | ") + " |")
            }
            lines.append("")

            var fileName = "attack-\(Markdown.slug(setting.fileStem)).svg"
            var suffix = 2
            while usedFiles.contains(fileName) {
                fileName = "attack-\(Markdown.slug(setting.fileStem))-\(suffix).svg"; suffix += 1
            }
            usedFiles.insert(fileName)
            var plot = SVGPlot(
                title: "\(setting.title): accuracy vs ε", xLabel: "ε (pixels, L∞)", yLabel: "accuracy (%)",
                series: rows.map { row in
                    var points = row.byEpsilon.keys.sorted().map {
                        SVGPlot.Point(x: $0, y: row.byEpsilon[$0]!.adversarialAccuracy * 100)
                    }
                    // The clean accuracy is the ε = 0 point of the curve.
                    if row.byEpsilon[0] == nil, let clean = row.byEpsilon.values.compactMap(\.cleanAccuracy).first {
                        points.insert(SVGPlot.Point(x: 0, y: clean * 100), at: 0)
                    }
                    return SVGPlot.Series(name: row.label, points: points)
                })
            plot.showMarkers = true
            plot.yInclude = [0]
            plot.xInclude = [0]
            plots.append((fileName, plot))
            lines.append("![\(Markdown.altText(setting.title)): accuracy versus epsilon](\(fileName))")
            lines.append("")
        }
        return (lines.joined(separator: "\n") + "\n", plots)
    }

    // MARK: - Appendix

    private func runsAppendix(runNames: [String], states: [String: RunState]) -> String {
        var lines = ["## Runs", "", "| Run | Commit | Started | Resumes | Command |", "|---|---|---|---:|---|"]
        var warnings: [String] = []
        for run in runNames {
            guard let metrics = states[run]?.metrics else {
                lines.append("| \(Markdown.cell(run)) | — | — | — | (missing) |")
                continue
            }
            let config = metrics.latestConfig
            let command = config?.command.map { "`\(Markdown.codeSpan($0))`" } ?? "—"
            lines.append(
                "| \(Markdown.cell(run)) | \(Markdown.cell(config?.commit ?? "—")) | "
                    + "\(Markdown.cell(metrics.config?.date ?? "—")) | \(metrics.resumedConfigs.count) | \(command) |")
            warnings += metrics.warnings.map { "- `\(run)`: \($0)" }
        }
        lines.append("")
        if !warnings.isEmpty {
            lines += ["Metrics lines skipped while reading:", ""] + warnings + [""]
        }
        return lines.joined(separator: "\n")
    }
}

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
        value.isFinite ? String(format: "%.\(decimals)f", value) : (value.isNaN ? "NaN" : (value > 0 ? "∞" : "−∞"))
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
