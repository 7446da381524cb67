import Foundation

/// Puts a ``ClaimResult`` into the report's verdict sentences (one per bullet).
struct VerdictText {
    var noiseMargin: Double

    func lines(for result: ClaimResult) -> [String] {
        switch result.outcome {
        case .noRuns: return ["No runs in this group."]
        case .singleRun(let run): return ["Only one run (`\(run)`): nothing to compare."]
        case .baselineMissing(let run): return ["Cannot be evaluated yet: the baseline run `\(run)` is missing."]
        case .comparisons(let comparisons): return comparisons.map(sentence)
        }
    }

    private var tie: String { "no difference beyond ±\(Markdown.points(noiseMargin))" }

    private func sentence(_ comparison: Comparison) -> String {
        let candidate = comparison.candidate
        guard let baseline = comparison.baseline else {
            if case .reach(let statistics) = comparison.evidence { return reach(statistics, run: candidate) }
            return "\(candidate): cannot be evaluated yet, the run is missing."
        }
        switch comparison.evidence {
        case .unavailable(let why):
            return unavailable(why, candidate: candidate, baseline: baseline)
        case .convergence(let statistics):
            return convergence(statistics, candidate: candidate, baseline: baseline)
        case .accuracy(let statistics):
            return accuracy(statistics, candidate: candidate, baseline: baseline)
        case .reach(let statistics):
            return reach(statistics, run: candidate)
        case .robustness(let statistics):
            return robustness(statistics, verdict: comparison.verdict, candidate: candidate, baseline: baseline)
        }
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
        }
    }

    private func convergence(_ s: ConvergenceStatistics, candidate: String, baseline: String) -> String {
        let last = s.lastCommonEpoch
        var text =
            "\(candidate) vs \(baseline) after \(last) epoch\(last == 1 ? "" : "s"): "
            + "\(Markdown.percent(s.accuracyAtLastCommonEpoch.candidate)) vs "
            + "\(Markdown.percent(s.accuracyAtLastCommonEpoch.baseline)) test accuracy; "
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
        switch s.direction {
        case .ahead:
            text += " — supports the paper's claim of faster convergence at this budget."
        case .behind:
            text +=
                " — the paper's claim of faster convergence does not hold at this budget: the baseline learns faster."
        case .tied:
            text += " — \(tie); the paper's claim of faster convergence is not supported at this budget."
        }
        return text
    }

    private func accuracy(_ s: AccuracyStatistics, candidate: String, baseline: String) -> String {
        var text =
            "\(candidate) vs \(baseline): best test accuracy \(Markdown.percent(s.bestTestAccuracy.candidate)) vs "
            + "\(Markdown.percent(s.bestTestAccuracy.baseline))"
        if let final = s.finalTestAccuracy {
            text += " (final \(Markdown.percent(final.candidate)) vs \(Markdown.percent(final.baseline)))"
        }
        if s.epochsCompleted.candidate != s.epochsCompleted.baseline {
            text += ", unequal budgets: \(s.epochsCompleted.candidate) vs \(s.epochsCompleted.baseline) epochs"
        }
        switch (s.direction, s.claimsHigher) {
        case (.ahead, true):
            text += " — supports the paper's claim of higher accuracy."
        case (.behind, true):
            text += " — the paper's claim of higher accuracy does not hold here: the baseline is more accurate."
        case (.tied, true):
            text += " — \(tie); the paper's claim of higher accuracy is not supported."
        case (.ahead, false):
            text += " — the paper's claim that it does not help does not hold here: it is more accurate."
        case (.behind, false):
            text += " — supports the paper's claim that it does not help: it is less accurate."
        case (.tied, false):
            text += " — \(tie); supports the paper's claim that it does not help."
        }
        return text
    }

    private func reach(_ s: ReachStatistics, run: String) -> String {
        let bestText = s.bestTestAccuracy.map { Markdown.percent($0) } ?? "no test accuracy"
        let targetText = Markdown.percent(s.target, decimals: 0)
        if s.reached {
            let epoch = s.firstEpochReaching.map { " (first at epoch \($0))" } ?? ""
            return "\(run): best test accuracy \(bestText), reaches \(targetText)\(epoch) "
                + "— supports the paper's claim."
        }
        let reason = s.diverged ? " and its loss diverged" : ""
        let budget =
            s.epochsPlanned.map { $0 > s.epochsCompleted ? " after \(s.epochsCompleted) of \($0) epochs" : "" }
            ?? " after \(s.epochsCompleted) epochs"
        return "\(run): best test accuracy \(bestText)\(budget), below \(targetText)\(reason) "
            + "— the paper's claim does not hold at this budget."
    }

    private func robustness(
        _ s: RobustnessStatistics, verdict: Verdict, candidate: String, baseline: String
    ) -> String {
        var text =
            "\(candidate) vs \(baseline) under \(s.matchedSettings) matched attack "
            + "setting\(s.matchedSettings == 1 ? "" : "s"): "
            + "mean adversarial accuracy \(Markdown.percent(s.meanAdversarialAccuracy.candidate)) vs "
            + "\(Markdown.percent(s.meanAdversarialAccuracy.baseline)); "
            + "ahead in \(s.ahead), behind in \(s.behind), tied in \(s.tied)"
        switch verdict {
        case .supported:
            text += " — supports the paper's claim of stronger robustness."
        case .contradicted:
            text += " — the paper's claim of stronger robustness does not hold: the baseline is more robust."
        case .mixed:
            text += " — mixed: the paper's claim of stronger robustness holds only for some attack settings."
        case .inconclusive, .notEvaluated:
            text += " — \(tie); the paper's claim of stronger robustness is not supported."
        }
        return text
    }
}
