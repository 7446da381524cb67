import DCNetMetrics
import Foundation

extension ExperimentReport {
    // MARK: - Groups

    /// A group's section: its claim, the table of its runs, the learning-curve plots, the clean-accuracy
    /// bar when it has one, and the verdict. `replicates`: per setting, its seeds' run names.
    func groupSection(
        _ group: ExperimentGroup, slug: String,
        states: [String: RunState], result: ClaimResult, replicates: [String: [String]] = [:]
    ) -> (String, [(fileName: String, plot: SVGPlot)]) {
        let runs = group.runs.flatMap { replicates[$0] ?? [$0] }
        var lines = [
            "## \(Markdown.text(group.labelledName))", "", "**Paper's claim:** \(Markdown.text(group.claim))", "",
        ]
        // With validation records in every run, the epoch a selection would pick is the best by
        // validation accuracy, and the thresholds are read on the validation curve.
        let summaries = runs.compactMap { states[$0]?.summary }
        let validation = !summaries.isEmpty && summaries.allSatisfy(\.hasValidation)
        lines += runTable(group, runs: runs, states: states, replicates: replicates, validation: validation)
        if let note = quantityNote(group.test, runs: summaries, validation: validation) { lines += [note, ""] }
        let (plotLines, plots) = learningCurvePlots(group, slug: slug, states: states, replicates: replicates)
        lines += plotLines
        let verdictText = VerdictText(noiseMargin: noiseMargin)
        if let check = result.cleanAccuracy {
            lines.append(
                "**Models that work:** this claim is only meaningful on models with a clean test accuracy of at least "
                    + "\(Markdown.percent(check.bar, decimals: 0)) (the final model's test accuracy):")
            lines.append("")
            lines += verdictText.cleanAccuracyLines(check).map { "- \($0)" }
            lines.append("")
        }
        lines += verdictLines(group, result: result, replicates: replicates, verdictText: verdictText)
        return (lines.joined(separator: "\n") + "\n", plots)
    }

    /// The group's table: one row per run (each seed of each setting), then an empty line.
    func runTable(
        _ group: ExperimentGroup, runs: [String], states: [String: RunState], replicates: [String: [String]],
        validation: Bool
    ) -> [String] {
        let baselineRuns = Set(group.baselineRun.map { replicates[$0] ?? [$0] } ?? [])
        let thresholdHeaders = accuracyThresholds.map {
            "Epochs to \(Markdown.percent($0, decimals: 0))\(validation ? " (val.)" : "")"
        }
        let selection =
            validation ? ["Best val. acc. (epoch)", "Test acc. at that epoch"] : ["Best test acc. (epoch)"]
        let headers =
            ["Run", "Epochs", "Final test acc."] + selection + thresholdHeaders
            + ["Images/s (median)", "Final train loss"]
        var lines = ["| " + headers.joined(separator: " | ") + " |"]
        lines.append("|" + headers.indices.map { $0 == 0 ? "---" : "---:" }.joined(separator: "|") + "|")
        for run in runs {
            let label = Markdown.cell(run) + (baselineRuns.contains(run) && group.runs.count > 1 ? " (baseline)" : "")
            guard let summary = states[run]?.summary else {
                let reason: String
                if case .missing(let why)? = states[run] { reason = why } else { reason = "missing" }
                lines.append(
                    "| \(label) | missing: \(Markdown.cell(reason)) |"
                        + String(repeating: " — |", count: headers.count - 2))
                continue
            }
            lines.append("| " + ([label] + runCells(summary, validation: validation)).joined(separator: " | ") + " |")
        }
        lines.append("")
        return lines
    }

    /// A run's cells after its label: epochs, final test accuracy, the best epoch, epochs to each
    /// threshold, speed and final training loss.
    func runCells(_ summary: RunSummary, validation: Bool) -> [String] {
        var epochs = "\(summary.epochsCompleted)"
        if let planned = summary.epochsPlanned, planned > summary.epochsCompleted {
            epochs += " of \(planned)"
        }
        if summary.diverged { epochs += " (diverged)" }
        let best: [String]
        if validation {
            let chosen = summary.bestByValidation
            best = [
                chosen.map { "\(Markdown.percent($0.validationAccuracy)) (\($0.epoch))" } ?? "—",
                chosen.map { Markdown.percent($0.testAccuracy) } ?? "—",
            ]
        } else {
            best = [summary.bestTestAccuracy.map { "\(Markdown.percent($0)) (\(summary.bestEpoch!))" } ?? "—"]
        }
        let reach = accuracyThresholds.map {
            summary.epochToReach($0, withinEpochs: nil, validation: validation).map(String.init) ?? "—"
        }
        return [epochs, summary.finalTestAccuracy.map { Markdown.percent($0) } ?? "—"] + best + reach
            + [
                summary.medianImagesPerSecond.map { String(format: "%.1f", $0) } ?? "—",
                summary.finalTrainLoss.map { Markdown.number($0, decimals: 3) } ?? "—",
            ]
    }

    /// Per setting, the mean over its seeds per epoch with the range over seeds as a band: the
    /// accuracy and the training-loss plot, and the lines that show them.
    func learningCurvePlots(
        _ group: ExperimentGroup, slug: String, states: [String: RunState], replicates: [String: [String]]
    ) -> ([String], [(fileName: String, plot: SVGPlot)]) {
        let curves = LearningCurves(
            settings: group.runs,
            replicates: Dictionary(
                uniqueKeysWithValues: group.runs.map { setting in
                    (
                        setting,
                        (replicates[setting] ?? [setting]).compactMap { run in
                            states[run]?.metrics.map { Replicate(name: run, metrics: $0) }
                        }
                    )
                }))
        let accuracyName = curves.validation ? "validation accuracy" : "test accuracy"
        var accuracyPlot = SVGPlot(
            title: "\(group.name): \(accuracyName)", xLabel: "epoch", yLabel: "\(accuracyName) (%)",
            series: curves.accuracy.map { $0.series() })
        accuracyPlot.integerX = true
        accuracyPlot.bandDescription = SeedCurve.bandDescription
        var lossPlot = SVGPlot(
            title: "\(group.name): training loss", xLabel: "epoch", yLabel: "training loss",
            series: curves.loss.map { $0.series() })
        lossPlot.integerX = true
        lossPlot.bandDescription = SeedCurve.bandDescription
        let accuracyFile = "\(slug)-accuracy.svg"
        let lossFile = "\(slug)-loss.svg"
        var lines = [
            "![\(Markdown.altText(group.name)): \(accuracyName) per epoch](\(accuracyFile))",
            "![\(Markdown.altText(group.name)): training loss per epoch](\(lossFile))",
            "",
        ]
        if curves.accuracy.contains(where: { $0.seedCount > 1 }) {
            lines.append(
                "_Plots: one line per setting, the mean over its seeds at the epochs every seed completed; the shaded "
                    + "band is the min–max range over the seeds (settings with one seed: a plain line). Accuracy: "
                    + (curves.validation
                        ? "validation accuracy (held-out training images)._"
                        : "test accuracy (no validation records)._"))
            lines.append("")
        }
        return (lines, [(accuracyFile, accuracyPlot), (lossFile, lossPlot)])
    }

    /// The verdict's lines, and how a verdict is reached with one seed and with several.
    func verdictLines(
        _ group: ExperimentGroup, result: ClaimResult, replicates: [String: [String]], verdictText: VerdictText
    ) -> [String] {
        var lines = ["**Verdict:**", ""]
        lines += verdictText.lines(for: result).map { "- \($0)" }
        lines.append("")
        let seedCounts = Set(group.runs.map { (replicates[$0] ?? [$0]).count })
        if seedCounts.contains(1) {
            lines.append(
                "_A comparison with a single seed on either side has no standard error: it can only *suggest*, and "
                    + "differences within ±\(Markdown.points(noiseMargin)) are treated as ties._")
        }
        if seedCounts.contains(where: { $0 > 1 }) {
            lines.append(
                "_With several seeds per setting (`<setting>-s<seed>`), a claim is supported or contradicted when the "
                    + "mean difference exceeds twice its standard error sqrt(s1²/n1 + s2²/n2), inconclusive otherwise._"
            )
        }
        lines.append("")
        return lines
    }

    /// Which quantity an accuracy or separation verdict reads, under the group's table.
    func quantityNote(_ test: ClaimTest, runs: [RunSummary], validation: Bool) -> String? {
        switch test {
        case .higherAccuracy, .noHigherAccuracy, .reachesAccuracy:
            if validation {
                return "_Verdict quantity: the final model's test accuracy (“Final test acc.”). Every run holds "
                    + "out validation images, so the test set chooses nothing; “Best val. acc.” is the epoch a "
                    + "selection on the validation images would pick, shown for reference only._"
            }
            if runs.contains(where: \.hasValidation) {
                return
                    "_Verdict quantity: the final model's test accuracy where both compared settings have validation "
                    + "records in every seed, else the best test accuracy over epochs (“Best test acc.”), which picks "
                    + "the epoch on the test set._"
            }
            return "_Verdict quantity: the best test accuracy over epochs (“Best test acc.”). These runs have no "
                + "validation records (an older suite), so the epoch is picked on the test set, flattering every run "
                + "alike._"
        case .betterSeparation:
            return "_Verdict quantity: the intra/inter-class angle ratio of the penultimate test-set features "
                + "(see “Feature geometry”); the accuracies above are context._"
        case .fasterConvergence, .moreRobust:
            return nil
        }
    }

    // MARK: - Attacks

    /// Per attack method: the curves of accuracy against ε over seeds (one plot) and a table of their
    /// mean ± sd, then the per-run tables of each mode. `settings` orders the lines and `seeds` holds
    /// each setting's runs with data.
    func attackSection(
        runNames: [String], states: [String: RunState], settings: [String], seeds: [String: [Replicate]]
    ) -> (String, [(fileName: String, plot: SVGPlot)]) {
        let perRun = runNames.compactMap { run -> (String, [AttackTable.Key: AttackRecord])? in
            guard let attacks = states[run]?.metrics?.attacks, !attacks.isEmpty else { return nil }
            return (run, AttackTable.latest(attacks))
        }
        guard !perRun.isEmpty else { return ("", []) }
        var lines = [
            "## Adversarial robustness", "",
            "Accuracy on perturbed test images; ε is the L∞ budget in pixel units (0–255). "
                + "White-box attacks are crafted on the model itself, black-box attacks on the source model and"
                + " transferred (“tanh ← baseline”: tanh attacked with examples crafted on the baseline, the seeds"
                + " paired: `tanh-s2 ← baseline-s2`).",
            "",
        ]
        var plots: [(fileName: String, plot: SVGPlot)] = []
        let curves = Dictionary(
            uniqueKeysWithValues: AttackCurves.build(settings: settings, replicates: seeds).map { ($0.method, $0) })
        let modeSettings = Set(perRun.flatMap { $0.1.keys.map(\.setting) }).sorted()
        var usedFiles: Set<String> = []
        for method in orderedUnique(modeSettings.map { AttackCurves.Method(method: $0.method, steps: $0.steps) }) {
            if let methodCurves = curves[method], !methodCurves.lines.isEmpty {
                var fileName = "attack-\(Markdown.slug(method.fileStem)).svg"
                var suffix = 2
                while usedFiles.contains(fileName) {
                    fileName = "attack-\(Markdown.slug(method.fileStem))-\(suffix).svg"; suffix += 1
                }
                usedFiles.insert(fileName)
                lines += attackCurveLines(methodCurves, fileName: fileName)
                var plot = SVGPlot(
                    title: "\(method.title): accuracy vs ε", xLabel: "ε (pixels, L∞)", yLabel: "accuracy (%)",
                    series: methodCurves.series)
                plot.showMarkers = true
                plot.yInclude = [0]
                plot.xInclude = [0]
                plot.bandDescription = SeedCurve.bandDescription
                plots.append((fileName, plot))
            }
            for setting in modeSettings where setting.method == method.method && setting.steps == method.steps {
                lines += attackTableLines(setting, perRun: perRun)
            }
        }
        return (lines.joined(separator: "\n") + "\n", plots)
    }

    /// The curve plot's link and caption, and the table of the lines' mean ± sd over seeds.
    private func attackCurveLines(_ curves: AttackCurves, fileName: String) -> [String] {
        let title = curves.method.title
        var lines = ["### \(title): accuracy against ε, mean over seeds", ""]
        lines.append("![\(Markdown.altText(title)): accuracy versus epsilon, mean over seeds](\(fileName))")
        lines.append("")
        let banded = curves.lines.contains { $0.curve.seedCount > 1 }
        lines.append(
            "_One line per attacked setting and source (white-box, or transferred from another setting with the "
                + "same seed), the mean over the seeds at the ε every seed was attacked with; ε = 0 is the clean "
                + "accuracy."
                + (banded ? " The shaded band is the min–max range over the seeds._" : "_"))
        lines.append("")
        let epsilons = Set(curves.lines.flatMap { $0.curve.points.map(\.x) }).filter { $0 != 0 }.sorted()
        let headers =
            ["Model", "Seeds", "Clean"]
            + epsilons.map { "ε = \(Markdown.number($0, decimals: $0 == $0.rounded() ? 0 : 2))" }
        lines.append("| " + headers.joined(separator: " | ") + " |")
        lines.append("|---|" + Array(repeating: "---:", count: headers.count - 1).joined(separator: "|") + "|")
        for line in curves.lines {
            func cell(_ x: Double) -> String {
                guard let point = line.curve.points.first(where: { $0.x == x }) else { return "—" }
                let values = SeedValues(runs: [], values: point.values)
                let sd = values.standardDeviation.map { " ± " + Markdown.number($0 * 100, decimals: 1) } ?? ""
                return Markdown.percent(values.mean) + sd
            }
            let cells =
                [Markdown.cell(AttackCurves.Line.label(target: line.target, source: line.source))]
                + ["\(line.curve.seedCount)", cell(0)] + epsilons.map(cell)
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        lines.append("")
        lines.append("_Mean ± sample standard deviation over the seeds, in percent (one seed: no spread)._")
        lines.append("")
        return lines
    }

    /// One attack setting's table: a row per run (and black-box source), the clean accuracy then each ε.
    private func attackTableLines(
        _ setting: AttackTable.Setting, perRun: [(String, [AttackTable.Key: AttackRecord])]
    ) -> [String] {
        // Rows: one per (model, source); columns: clean accuracy then each epsilon.
        struct Row { let label: String; var byEpsilon: [Double: AttackRecord] }
        var rows: [Row] = []
        for (run, table) in perRun {
            let keys = table.keys.filter { $0.setting == setting }
            // Sorted: dictionary order changes from one process to the next, and so would the rows
            // (white-box, the empty source, first).
            for source in Set(keys.map { $0.source ?? "" }).sorted() {
                let label = source.isEmpty ? run : "\(run) ← \(source)"
                var byEpsilon: [Double: AttackRecord] = [:]
                for key in keys where (key.source ?? "") == source { byEpsilon[key.epsilonPixels] = table[key]! }
                rows.append(Row(label: label, byEpsilon: byEpsilon))
            }
        }
        let epsilons = Set(rows.flatMap(\.byEpsilon.keys)).sorted()
        var lines = ["### \(setting.title)", ""]
        let headers =
            ["Model", "Clean"]
            + epsilons.map { "ε = \(Markdown.number($0, decimals: $0 == $0.rounded() ? 0 : 2))" }
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
        return lines
    }

    // MARK: - Appendix

    func runsAppendix(runNames: [String], states: [String: RunState]) -> String {
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
                    + "\(Markdown.cell(metrics.config?.date ?? "—")) | "
                    + "\(metrics.resumedConfigs.count) | \(command) |")
            warnings += metrics.warnings.map { "- `\(run)`: \($0)" }
        }
        lines.append("")
        if !warnings.isEmpty {
            lines += ["Metrics lines skipped while reading:", ""] + warnings + [""]
        }
        return lines.joined(separator: "\n")
    }
}
