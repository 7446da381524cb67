import Foundation

/// Puts a ``ClaimResult`` into the report's verdict sentences (one per bullet).
struct VerdictText {
    var noiseMargin: Double

    func lines(for result: ClaimResult) -> [String] {
        switch result.outcome {
        case .noRuns: return ["No runs in this group."]
        case .singleRun(let run): return ["Only one run (`\(run)`): nothing to compare."]
        case .baselineMissing(let run): return ["Cannot be evaluated yet: the baseline run `\(run)` is missing."]
        case .comparisons(let comparisons):
            return comparisons.map { sentence($0) + flag($0, result.cleanAccuracy) }
        }
    }

    /// One line per run of a group with `min_clean_accuracy`: its final clean test accuracy and
    /// whether it meets the bar.
    func cleanAccuracyLines(_ check: CleanAccuracyCheck) -> [String] {
        guard !check.runs.isEmpty else { return ["No run has results yet."] }
        let bar = Markdown.percent(check.bar, decimals: 0)
        return check.runs.map { run in
            guard let accuracy = run.accuracy else {
                return "\(run.run): no final test accuracy recorded — cannot show that it meets the \(bar) bar."
            }
            // Just below the bar shows two decimals, so it does not read as the bar itself.
            let shown =
                !run.meetsBar && Markdown.percent(accuracy) == Markdown.percent(check.bar)
                ? Markdown.percent(accuracy, decimals: 2) : Markdown.percent(accuracy)
            return "\(run.run): final clean test accuracy \(shown) — "
                + (run.meetsBar ? "meets the \(bar) bar." : "**below the \(bar) bar**.")
        }
    }

    /// Appended to a verdict when a run it rests on misses the group's clean-accuracy bar.
    private func flag(_ comparison: Comparison, _ check: CleanAccuracyCheck?) -> String {
        guard let check else { return "" }
        let below = check.runsBelowBar(settings: [comparison.candidate] + (comparison.baseline.map { [$0] } ?? []))
        guard !below.isEmpty else { return "" }
        let names = below.map { "`\($0.run)`" }.joined(separator: ", ")
        return " **Flag:** \(names) \(below.count == 1 ? "is" : "are") below the "
            + "\(Markdown.percent(check.bar, decimals: 0)) clean-accuracy bar: the verdict stands, but this claim is "
            + "only meaningful on models that work."
    }

    private var tie: String { "no difference beyond ±\(Markdown.points(noiseMargin))" }

    private func sentence(_ comparison: Comparison) -> String {
        let candidate = comparison.candidate
        guard let baseline = comparison.baseline else {
            if case .reach(let statistics) = comparison.evidence {
                return reach(statistics, run: candidate, verdict: comparison.verdict, seeds: comparison.replicates)
            }
            return "\(candidate): cannot be evaluated yet, the run is missing."
        }
        let body: String
        let claim: Claim
        switch comparison.evidence {
        case .unavailable(let why):
            return unavailable(why, candidate: candidate, baseline: baseline)
        case .convergence(let statistics):
            body = convergence(statistics, candidate: candidate, baseline: baseline)
            claim = Claim(
                phrase: "of faster convergence", budget: " at this budget", otherWins: "the baseline learns faster")
        case .accuracy(let statistics):
            body = accuracy(statistics, candidate: candidate, baseline: baseline)
            claim =
                statistics.claimsHigher
                ? Claim(phrase: "of higher accuracy", budget: "", otherWins: "the baseline is more accurate")
                : Claim(phrase: "that it does not help", budget: "", otherWins: "it is more accurate")
        case .reach(let statistics):
            return reach(statistics, run: candidate, verdict: comparison.verdict, seeds: comparison.replicates)
        case .robustness(let statistics):
            body = robustness(statistics, candidate: candidate, baseline: baseline)
            claim = Claim(
                phrase: "of stronger robustness", budget: "", otherWins: "the baseline is more robust",
                mixed: "holds only for some attack settings")
        case .separation(let statistics):
            body = separation(statistics, candidate: candidate, baseline: baseline)
            claim = Claim(
                phrase: "of better feature separation", budget: "",
                otherWins: "the baseline's classes are better separated",
                tie: "no difference beyond ±\(Markdown.number(noiseMargin, decimals: 3)) in the ratio")
        }
        guard let seeds = comparison.replicates else {
            return body + ending(comparison.verdict, claim, seeds: nil)
        }
        if seeds.isSingleSeed {
            // The single-seed sentence keeps the per-epoch detail; a baseline with several seeds is
            // summarised after it because the verdict uses their mean.
            let extra =
                seeds.values.candidate.count > 1 || seeds.values.baseline.count > 1
                ? "; " + seedSummary(seeds, candidate: candidate, baseline: baseline) : ""
            return body + extra + leftOut(comparison.evidence) + ending(comparison.verdict, claim, seeds: seeds)
        }
        return seedSummary(seeds, candidate: candidate, baseline: baseline) + leftOut(comparison.evidence)
            + ending(comparison.verdict, claim, seeds: seeds)
    }

    /// How a claim is named in the verdict's ending.
    private struct Claim {
        var phrase: String
        var budget: String
        var otherWins: String
        var mixed = ""
        /// The single-seed tie margin in the measure's units (default: the margin in pp).
        var tie: String? = nil
    }

    private func ending(_ verdict: Verdict, _ claim: Claim, seeds: ReplicateComparison?) -> String {
        let multi = seeds.map { !$0.isSingleSeed } ?? false
        let margin = multi ? "no difference beyond 2 standard errors" : (claim.tie ?? tie)
        let what = "the paper's claim \(claim.phrase)"
        switch verdict {
        case .supported:
            return " — supports \(what)\(claim.budget)\(multi ? " (beyond 2 standard errors)" : "")."
        case .contradicted:
            return " — \(what) does not hold\(claim.budget): \(claim.otherWins)"
                + (multi ? " (beyond 2 standard errors)." : ".")
        case .suggests:
            return " — suggests \(what)\(claim.budget) (single seed: no standard error, so not a test)."
        case .suggestsAgainst:
            return " — suggests \(what) does not hold\(claim.budget): \(claim.otherWins)"
                + " (single seed: no standard error, so not a test)."
        case .mixed:
            return " — mixed: \(what) \(claim.mixed)."
        case .inconclusive, .notEvaluated:
            return " — inconclusive: \(margin); \(what) is not supported\(claim.budget)."
        }
    }

    /// "a vs b over 3 vs 3 seeds, <measure>: mean ± sd vs mean ± sd (per seed: …); difference ± SE".
    private func seedSummary(_ r: ReplicateComparison, candidate: String, baseline: String) -> String {
        // Accuracies in percent (differences in pp); the angle ratio as a plain number.
        let accuracy = r.measure.isAccuracy
        func pct(_ value: Double) -> String {
            accuracy ? String(format: "%.1f", value * 100) : Markdown.number(value, decimals: 3)
        }
        func summary(_ v: SeedValues) -> String {
            (accuracy ? Markdown.percent(v.mean) : pct(v.mean)) + (v.standardDeviation.map { " ± \(pct($0))" } ?? "")
        }
        func difference(_ value: Double) -> String { accuracy ? Markdown.points(value) : pct(value) }
        func perSeed(_ v: SeedValues) -> String { v.values.map(pct).joined(separator: ", ") }
        let (c, b) = (r.values.candidate, r.values.baseline)
        let measure: String
        switch r.measure {
        case .meanValidationAccuracy, .meanTestAccuracy:
            let kind = r.measure == .meanValidationAccuracy ? "validation" : "test"
            let epochs = r.comparedEpochs
            let range =
                epochs.count == (epochs.last ?? 0) - (epochs.first ?? 0) + 1
                ? "epochs \(epochs.first ?? 0)–\(epochs.last ?? 0)" : "\(epochs.count) comparable epochs"
            measure = "mean \(kind) accuracy over \(range)"
        case .bestTestAccuracy: measure = "best test accuracy"
        case .finalTestAccuracy: measure = "final test accuracy"
        case .meanAdversarialAccuracy: measure = "mean adversarial accuracy over the matched attack settings"
        case .meanAdversarialFractionOfClean:
            measure = "mean adversarial accuracy as a fraction of the model's clean accuracy, matched attack settings"
        case .featureAngleRatio: measure = "intra/inter-class angle ratio of the features (smaller: better separated)"
        case .epochsToThreshold:
            let reached = r.threshold.map { Markdown.percent($0, decimals: 0) } ?? "the threshold"
            measure = "epochs to \(reached) (a seed that never reaches it counts as one epoch after its last)"
        }
        var text =
            "\(candidate) vs \(baseline) over \(c.count) vs \(b.count) seed\(b.count == 1 ? "" : "s"), \(measure): "
            + "\(summary(c)) vs \(summary(b)) (mean ± sd; per seed: \(perSeed(c)) vs \(perSeed(b)))"
        text += "; difference \(r.difference >= 0 ? "+" : "")\(difference(r.difference))"
        if let se = r.standardError { text += " (standard error \(difference(se)))" }
        if let threshold = r.threshold, let reach = r.epochsToReach {
            func epochs(_ list: [Int?]) -> String { list.map { $0.map(String.init) ?? "—" }.joined(separator: ", ") }
            text +=
                "; epochs to reach \(Markdown.percent(threshold, decimals: 0)) per seed: "
                + "\(epochs(reach.candidate)) vs \(epochs(reach.baseline))"
        }
        return text
    }

    private func unavailable(_ why: Unavailable, candidate: String, baseline: String) -> String {
        switch why {
        case .runMissing:
            return "\(candidate) vs \(baseline): cannot be evaluated yet, `\(candidate)` is missing."
        case .noCommonEpochs:
            return "\(candidate) vs \(baseline): no epochs in common, cannot compare."
        case .noCommonTestAccuracies:
            return "\(candidate) vs \(baseline): no test accuracies in common, cannot compare."
        case .noTestAccuracy:
            return "\(candidate) vs \(baseline): no test accuracy recorded, cannot compare."
        case .noMatchedAttacks:
            return "\(candidate) vs \(baseline): no attack results for the same method, mode and epsilon "
                + "— cannot be evaluated."
        case .noFeatures(let runs):
            let which = runs.isEmpty ? "" : " for " + runs.map { "`\($0)`" }.joined(separator: ", ")
            return "\(candidate) vs \(baseline): not evaluated: no features\(which) (`<run>/features.safetensors`, "
                + "written by `dcnet-dist features`; pass their directory with `report --features`)."
        }
    }

    private func convergence(_ s: ConvergenceStatistics, candidate: String, baseline: String) -> String {
        let last = s.lastCommonEpoch
        var text =
            "\(candidate) vs \(baseline) after \(last) epoch\(last == 1 ? "" : "s"): "
            + "\(Markdown.percent(s.accuracyAtLastCommonEpoch.candidate)) vs "
            + "\(Markdown.percent(s.accuracyAtLastCommonEpoch.baseline)) "
            + "\(s.usesValidation ? "validation" : "test") accuracy; "
            + (s.comparedEpochCount == s.commonEpochs.count
                ? "mean over epochs \(s.commonEpochs.first!)–\(last): "
                : "mean over the \(s.comparedEpochCount) comparable epochs: ")
            + "\(Markdown.percent(s.meanTestAccuracy.candidate)) vs \(Markdown.percent(s.meanTestAccuracy.baseline))"
        if let threshold = s.threshold {
            func reached(_ epoch: Int?) -> String { epoch.map(String.init) ?? "not reached" }
            text +=
                "; epochs to reach \(Markdown.percent(threshold.accuracy, decimals: 0)): "
                + "\(reached(threshold.epochs.candidate)) vs \(reached(threshold.epochs.baseline))"
        }
        if let loss = s.meanTrainLoss {
            text +=
                "; mean training loss \(String(format: "%.3f", loss.candidate)) vs "
                + "\(String(format: "%.3f", loss.baseline))"
        }
        if !s.laggingEpochs.isEmpty {
            let which = s.laggingEpochs.map(String.init).joined(separator: ", ")
            text +=
                " (epoch\(s.laggingEpochs.count == 1 ? "" : "s") \(which) left out of the mean: "
                + "test accuracy below 60% of the "
                + "training accuracy, i.e. evaluation statistics not yet settled, not a network that has not learned)"
        }
        return text
    }

    private func accuracy(_ s: AccuracyStatistics, candidate: String, baseline: String) -> String {
        if s.usesFinalTestAccuracy, let final = s.finalTestAccuracy {
            let best = s.bestTestAccuracy
            var text =
                "\(candidate) vs \(baseline): final test accuracy \(Markdown.percent(final.candidate)) vs "
                + "\(Markdown.percent(final.baseline)) (best over epochs \(Markdown.percent(best.candidate)) vs "
                + "\(Markdown.percent(best.baseline)), not used: it would pick on the test set)"
            if s.epochsCompleted.candidate != s.epochsCompleted.baseline {
                text += ", unequal budgets: \(s.epochsCompleted.candidate) vs \(s.epochsCompleted.baseline) epochs"
            }
            return text
        }
        var text =
            "\(candidate) vs \(baseline): best test accuracy \(Markdown.percent(s.bestTestAccuracy.candidate)) vs "
            + "\(Markdown.percent(s.bestTestAccuracy.baseline))"
        if let final = s.finalTestAccuracy {
            text += " (final \(Markdown.percent(final.candidate)) vs \(Markdown.percent(final.baseline)))"
        }
        if s.epochsCompleted.candidate != s.epochsCompleted.baseline {
            text += ", unequal budgets: \(s.epochsCompleted.candidate) vs \(s.epochsCompleted.baseline) epochs"
        }
        return text
    }

    private func reach(
        _ s: ReachStatistics, run: String, verdict: Verdict, seeds: ReplicateComparison?
    ) -> String {
        let strength: String
        switch verdict {
        case .supported, .contradicted: strength = ""
        case .inconclusive: strength = " (inconclusive: only some seeds reach it)"
        default: strength = " (single seed: not a test)"
        }
        let quantity = s.usesFinalTestAccuracy ? "final test accuracy" : "best test accuracy"
        let seedText =
            seeds.flatMap { $0.values.candidate.count > 1 ? $0.values.candidate : nil }
            .map { v in
                "; \(quantity) per seed: " + v.values.map { Markdown.percent($0) }.joined(separator: ", ")
            } ?? ""
        let bestText = s.judgedAccuracy.map { Markdown.percent($0) } ?? "no test accuracy"
        let targetText = Markdown.percent(s.target, decimals: 0)
        if s.reached {
            let epoch = s.firstEpochReaching.map { " (first at epoch \($0))" } ?? ""
            let verb = verdict == .supported ? "supports" : (verdict == .suggests ? "suggests" : "bears on")
            return "\(run): \(quantity) \(bestText), reaches \(targetText)\(epoch)\(seedText) "
                + "— \(verb) the paper's claim\(strength)."
        }
        let reason = s.diverged ? " and its loss diverged" : ""
        let budget =
            s.epochsPlanned.map { $0 > s.epochsCompleted ? " after \(s.epochsCompleted) of \($0) epochs" : "" }
            ?? " after \(s.epochsCompleted) epochs"
        return "\(run): \(quantity) \(bestText)\(budget), below \(targetText)\(reason)\(seedText) "
            + "— the paper's claim does not hold at this budget\(strength)."
    }

    private func separation(_ s: SeparationStatistics, candidate: String, baseline: String) -> String {
        func angle(_ value: Double) -> String { Markdown.number(value, decimals: 2) + "°" }
        return "\(candidate) vs \(baseline): intra/inter-class angle ratio of the penultimate features "
            + "\(Markdown.number(s.ratio.candidate, decimals: 3)) vs \(Markdown.number(s.ratio.baseline, decimals: 3)) "
            + "(smaller: better separated; intra-class \(angle(s.intraClassAngle.candidate)) vs "
            + "\(angle(s.intraClassAngle.baseline)), inter-class \(angle(s.interClassAngle.candidate)) vs "
            + "\(angle(s.interClassAngle.baseline)))"
    }

    /// Seeds a separation verdict had to leave out for want of features.
    private func leftOut(_ evidence: Evidence) -> String {
        guard case .separation(let s) = evidence, !s.runsWithoutFeatures.isEmpty else { return "" }
        return "; without features, left out: " + s.runsWithoutFeatures.map { "`\($0)`" }.joined(separator: ", ")
    }

    private func robustness(_ s: RobustnessStatistics, candidate: String, baseline: String) -> String {
        let text =
            "\(candidate) vs \(baseline) under \(s.matchedSettings) matched attack "
            + "setting\(s.matchedSettings == 1 ? "" : "s"): "
            + "mean adversarial accuracy \(Markdown.percent(s.meanAdversarialAccuracy.candidate)) vs "
            + "\(Markdown.percent(s.meanAdversarialAccuracy.baseline)); "
            + "ahead in \(s.ahead), behind in \(s.behind), tied in \(s.tied)"
        return text
    }
}
