import DCNetMetrics
import Foundation

extension ExperimentReport {
    // MARK: - Groups

    func groupSection(
        _ group: ExperimentGroup, slug: String,
        states: [String: RunState], result: ClaimResult, replicates: [String: [String]] = [:]
    ) -> (String, [(fileName: String, plot: SVGPlot)]) {
        let runs = group.runs.flatMap { replicates[$0] ?? [$0] }
        let baselineRuns = Set(group.baselineRun.map { replicates[$0] ?? [$0] } ?? [])
        var lines = ["## \(Markdown.text(group.name))", "", "**Paper's claim:** \(Markdown.text(group.claim))", ""]

        // Table. With validation records in every run, the epoch a selection would pick is the best
        // by validation accuracy, and the thresholds are read on the validation curve.
        let summaries = runs.compactMap { states[$0]?.summary }
        let validation = !summaries.isEmpty && summaries.allSatisfy(\.hasValidation)
        let thresholdHeaders = accuracyThresholds.map {
            "Epochs to \(Markdown.percent($0, decimals: 0))\(validation ? " (val.)" : "")"
        }
        let selection =
            validation ? ["Best val. acc. (epoch)", "Test acc. at that epoch"] : ["Best test acc. (epoch)"]
        let headers =
            ["Run", "Epochs", "Final test acc."] + selection + thresholdHeaders
            + ["Images/s (median)", "Final train loss"]
        lines.append("| " + headers.joined(separator: " | ") + " |")
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
            let cells =
                [label, epochs, summary.finalTestAccuracy.map { Markdown.percent($0) } ?? "—"] + best + reach
                + [
                    summary.medianImagesPerSecond.map { String(format: "%.1f", $0) } ?? "—",
                    summary.finalTrainLoss.map { Markdown.number($0, decimals: 3) } ?? "—",
                ]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        lines.append("")
        if let note = quantityNote(group.test, runs: summaries, validation: validation) { lines += [note, ""] }

        // Plots.
        let present = runs.filter { states[$0]?.summary != nil }
        // One series per run: `value` of each epoch record against the epoch.
        func epochSeries(_ value: @escaping (EpochRecord) -> Double) -> [SVGPlot.Series] {
            present.map { run in
                SVGPlot.Series(
                    name: run,
                    points: states[run]!.metrics!.epochs.map { SVGPlot.Point(x: Double($0.epoch), y: value($0)) })
            }
        }
        var accuracyPlot = SVGPlot(
            title: "\(group.name): test accuracy", xLabel: "epoch", yLabel: "test accuracy (%)",
            series: epochSeries { ($0.testAccuracy ?? .nan) * 100 })
        accuracyPlot.integerX = true
        var lossPlot = SVGPlot(
            title: "\(group.name): training loss", xLabel: "epoch", yLabel: "training loss",
            series: epochSeries { $0.trainLoss ?? .nan })
        lossPlot.integerX = true
        let accuracyFile = "\(slug)-accuracy.svg"
        let lossFile = "\(slug)-loss.svg"
        lines.append("![\(Markdown.altText(group.name)): test accuracy per epoch](\(accuracyFile))")
        lines.append("![\(Markdown.altText(group.name)): training loss per epoch](\(lossFile))")
        lines.append("")

        // Models that work: each run's clean accuracy against the group's bar.
        let verdictText = VerdictText(noiseMargin: noiseMargin)
        if let check = result.cleanAccuracy {
            lines.append(
                "**Models that work:** this claim is only meaningful on models with a clean test accuracy of at least "
                    + "\(Markdown.percent(check.bar, decimals: 0)) (the final model's test accuracy):")
            lines.append("")
            lines += verdictText.cleanAccuracyLines(check).map { "- \($0)" }
            lines.append("")
        }

        // Verdict.
        lines.append("**Verdict:**")
        lines.append("")
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
        return (lines.joined(separator: "\n") + "\n", [(accuracyFile, accuracyPlot), (lossFile, lossPlot)])
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

    func attackSection(runNames: [String], states: [String: RunState]) -> (
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
                + "White-box attacks are crafted on the model itself, black-box attacks on the source model and"
                + " transferred.",
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
