import Foundation

/// Computes each group's statistics and verdicts from the runs' metrics; no text.
public struct ClaimEvaluator: Sendable {
    /// Differences at most this large (fraction) count as ties.
    public var noiseMargin: Double
    /// Test accuracies (fractions) whose epochs-to-reach the convergence comparison quotes.
    public var accuracyThresholds: [Double]

    public init(noiseMargin: Double, accuracyThresholds: [Double]) {
        self.noiseMargin = noiseMargin
        self.accuracyThresholds = accuracyThresholds
    }

    /// `runs`: the metrics of every run with usable data; a run named in the group but absent
    /// here is missing.
    public func evaluate(_ group: ExperimentGroup, runs: [String: RunMetrics]) -> ClaimResult {
        evaluate(
            group, replicates: Dictionary(uniqueKeysWithValues: runs.map { ($0, [Replicate(name: $0, metrics: $1)]) }))
    }

    /// `replicates`: per setting named in the group, its seeds with usable data (first seed first).
    public func evaluate(_ group: ExperimentGroup, replicates: [String: [Replicate]]) -> ClaimResult {
        let present = replicates.filter { !$0.value.isEmpty }
        return ClaimResult(
            group: group, outcome: outcome(group, replicates: present),
            cleanAccuracy: group.minCleanAccuracy.map { cleanAccuracy(group, bar: $0, replicates: present) })
    }

    private func outcome(_ group: ExperimentGroup, replicates: [String: [Replicate]]) -> ClaimResult.Outcome {
        let runs = replicates.mapValues(\.[0].metrics)
        guard let baseline = group.baselineRun else { return .noRuns }
        let candidates = group.candidateRuns
        if case .reachesAccuracy(let target) = group.test {
            // Absolute claim: the baseline is context, not a comparison partner.
            let tested = candidates.isEmpty ? [baseline] : candidates
            return .comparisons(tested.map { reach(run: $0, target: target, replicates: replicates[$0] ?? []) })
        }
        guard !candidates.isEmpty else { return .singleRun(baseline) }
        guard let baseMetrics = runs[baseline] else { return .baselineMissing(baseline) }
        return .comparisons(
            candidates.flatMap { candidate -> [Comparison] in
                guard let metrics = runs[candidate] else {
                    return [
                        Comparison(
                            candidate: candidate, baseline: baseline, verdict: .notEvaluated,
                            evidence: .unavailable(.runMissing))
                    ]
                }
                let (ours, theirs) = (replicates[candidate]!, replicates[baseline]!)
                if group.test == .betterSeparation {
                    return [separation(candidate: candidate, baseline: baseline, ours, theirs)]
                }
                // Accuracy is read on the final model when every compared run held out validation
                // images: the best epoch by test accuracy would choose on the test set.
                let final = (ours + theirs).allSatisfy { RunSummary($0.metrics).hasValidation }
                let peers = Paired(theirs.map(\.name), ours.map(\.name))
                let (verdict, evidence) = compare(
                    group.test, metrics, baseMetrics, peers: peers, final: final, window: group.convergenceEpochs)
                let seeds = replicateComparison(group, ours, theirs, final: final)
                var comparisons = [
                    Comparison(
                        candidate: candidate, baseline: baseline,
                        verdict: combined(verdict, seeds, test: group.test), evidence: evidence, replicates: seeds)
                ]
                for extra in secondaryComparisons(group, ours, theirs) {
                    // Its own verdict from the seeds; the first seed's evidence is the primary one's.
                    let first: Verdict =
                        extra.direction(noiseMargin: noiseMargin) == .ahead ? .supported : .inconclusive
                    comparisons.append(
                        Comparison(
                            candidate: candidate, baseline: baseline,
                            verdict: seedVerdict(extra, firstSeed: first, test: group.test), evidence: evidence,
                            replicates: extra))
                }
                return comparisons
            })
    }

    /// The verdict of a comparison made on the seeds only (no first-seed test of its own).
    private func seedVerdict(_ seeds: ReplicateComparison, firstSeed: Verdict, test: ClaimTest) -> Verdict {
        if seeds.isSingleSeed {
            switch seeds.direction(noiseMargin: noiseMargin) {
            case .ahead: return .suggests
            case .behind: return .suggestsAgainst
            case .tied: return .inconclusive
            }
        }
        return combined(firstSeed, seeds, test: test)
    }

    /// Further quantities a group's claim is judged on: epochs to the convergence threshold when the
    /// group names one, and, in suites with a pre-registration (groups with a `registration`),
    /// robustness relative to each model's clean accuracy.
    private func secondaryComparisons(
        _ group: ExperimentGroup, _ candidates: [Replicate], _ baselines: [Replicate]
    ) -> [ReplicateComparison] {
        switch group.test {
        case .fasterConvergence:
            guard let threshold = group.convergenceThreshold else { return [] }
            return epochsToThresholdSeeds(candidates, baselines, threshold: threshold).map { [$0] } ?? []
        case .moreRobust:
            guard group.registration != nil else { return [] }
            return robustnessSeeds(candidates, baselines, relativeToClean: true).map { [$0] } ?? []
        default:
            return []
        }
    }

    /// Per seed, the first epoch reaching `threshold` (validation accuracy when every seed has it); a
    /// seed that never reaches it counts as one epoch after its last, so a seed that fails is not
    /// dropped in favour of the claim.
    private func epochsToThresholdSeeds(
        _ candidates: [Replicate], _ baselines: [Replicate], threshold: Double
    ) -> ReplicateComparison? {
        let all = (candidates + baselines).map { RunSummary($0.metrics) }
        guard !all.isEmpty else { return nil }
        let validation = all.allSatisfy(\.hasValidation)
        func reached(_ replicates: [Replicate]) -> [Int?] {
            replicates.map { r in
                let summary = RunSummary(r.metrics)
                return summary.epochToReach(threshold, withinEpochs: summary.epochsCompleted, validation: validation)
            }
        }
        func values(_ replicates: [Replicate]) -> SeedValues {
            SeedValues(
                runs: replicates.map(\.name),
                values: zip(replicates, reached(replicates)).map { r, epoch in
                    Double(epoch ?? RunSummary(r.metrics).epochsCompleted + 1)
                })
        }
        return ReplicateComparison(
            measure: .epochsToThreshold, values: Paired(values(candidates), values(baselines)), threshold: threshold,
            epochsToReach: Paired(reached(candidates), reached(baselines)), comparedEpochs: [])
    }

    /// A single seed on either side caps the verdict at "suggests"; with seeds on both sides the
    /// mean difference must exceed twice its standard error.
    func combined(_ firstSeed: Verdict, _ seeds: ReplicateComparison?, test: ClaimTest) -> Verdict {
        guard let seeds, firstSeed != .notEvaluated else { return firstSeed }
        let verdict: Verdict
        if seeds.values.candidate.count == 1 && seeds.values.baseline.count == 1 {
            verdict = firstSeed
        } else {
            switch (seeds.direction(noiseMargin: noiseMargin), test) {
            // "Does not help": a tie is what the claim predicts.
            case (.ahead, .noHigherAccuracy): verdict = .contradicted
            case (_, .noHigherAccuracy): verdict = .supported
            case (.ahead, _): verdict = .supported
            case (.behind, _): verdict = .contradicted
            case (.tied, _): verdict = .inconclusive
            }
        }
        guard seeds.isSingleSeed else { return verdict }
        switch verdict {
        case .supported: return .suggests
        case .contradicted: return .suggestsAgainst
        default: return verdict
        }
    }

    private func replicateComparison(
        _ group: ExperimentGroup, _ candidates: [Replicate], _ baselines: [Replicate], final: Bool
    ) -> ReplicateComparison? {
        switch group.test {
        case .fasterConvergence:
            return convergenceSeeds(
                candidates, baselines, window: group.convergenceEpochs, threshold: group.convergenceThreshold)
        case .higherAccuracy, .noHigherAccuracy:
            func values(_ replicates: [Replicate]) -> SeedValues {
                let judged = replicates.compactMap { r in
                    RunSummary(r.metrics).judgedTestAccuracy(final: final).map { (r.name, $0) }
                }
                return SeedValues(runs: judged.map(\.0), values: judged.map(\.1))
            }
            let paired = Paired(values(candidates), values(baselines))
            guard paired.candidate.count > 0, paired.baseline.count > 0 else { return nil }
            return ReplicateComparison(
                measure: final ? .finalTestAccuracy : .bestTestAccuracy, values: paired, threshold: nil,
                epochsToReach: nil, comparedEpochs: [])
        case .moreRobust:
            return robustnessSeeds(candidates, baselines, relativeToClean: false)
        case .reachesAccuracy, .betterSeparation:
            return nil
        }
    }

    /// Area under each seed's learning curve over the epochs every seed of both settings completed
    /// and evaluated with settled statistics; validation accuracy when every seed has it, because
    /// choosing or judging on the test set would leak it into the verdict. `window`: only epochs up to
    /// it; `threshold`: the accuracy whose epochs-to-reach are quoted (else the highest one reached).
    private func convergenceSeeds(
        _ candidates: [Replicate], _ baselines: [Replicate], window: Int?, threshold fixedThreshold: Double?
    ) -> ReplicateComparison? {
        let candidateSummaries = candidates.map { RunSummary($0.metrics) }
        let baseSummaries = baselines.map { RunSummary($0.metrics) }
        let all = candidateSummaries + baseSummaries
        let validation = all.allSatisfy(\.hasValidation)
        var common = Set(all[0].epochNumbers.filter { $0 <= (window ?? .max) })
        for summary in all { common.formIntersection(summary.epochNumbers) }
        guard let lastCommon = common.max() else { return nil }
        let epochs = common.sorted().filter { epoch in
            all.allSatisfy { summary in
                !summary.evaluationLagsTraining(atEpoch: epoch, validation: validation)
                    && summary.curveAccuracy(atEpoch: epoch, validation: validation)?.isFinite == true
            }
        }
        guard !epochs.isEmpty else { return nil }
        func values(_ replicates: [Replicate], _ summaries: [RunSummary]) -> SeedValues {
            SeedValues(
                runs: replicates.map(\.name),
                values: summaries.map { summary in
                    epochs.map { summary.curveAccuracy(atEpoch: $0, validation: validation)! }.reduce(0, +)
                        / Double(epochs.count)
                })
        }
        let threshold =
            fixedThreshold
            ?? accuracyThresholds.sorted().last { threshold in
                all.contains { $0.epochToReach(threshold, withinEpochs: lastCommon, validation: validation) != nil }
            }
        return ReplicateComparison(
            measure: validation ? .meanValidationAccuracy : .meanTestAccuracy,
            values: Paired(values(candidates, candidateSummaries), values(baselines, baseSummaries)),
            threshold: threshold,
            epochsToReach: threshold.map { threshold in
                func reached(_ summaries: [RunSummary]) -> [Int?] {
                    summaries.map { $0.epochToReach(threshold, withinEpochs: lastCommon, validation: validation) }
                }
                return Paired(reached(candidateSummaries), reached(baseSummaries))
            },
            comparedEpochs: epochs)
    }

    private func compare(
        _ test: ClaimTest, _ metrics: RunMetrics, _ baseMetrics: RunMetrics, peers: Paired<[String]>, final: Bool,
        window: Int?
    ) -> (Verdict, Evidence) {
        switch test {
        case .fasterConvergence:
            return convergence(RunSummary(metrics), RunSummary(baseMetrics), window: window)
        case .higherAccuracy:
            return accuracy(RunSummary(metrics), RunSummary(baseMetrics), claimsHigher: true, final: final)
        case .noHigherAccuracy:
            return accuracy(RunSummary(metrics), RunSummary(baseMetrics), claimsHigher: false, final: final)
        case .moreRobust:
            return robustness(metrics, baseMetrics, peers: peers)
        case .reachesAccuracy, .betterSeparation:
            preconditionFailure("absolute claims and feature separation are evaluated on their own")
        }
    }

    private func convergence(_ summary: RunSummary, _ baseSummary: RunSummary, window: Int?) -> (Verdict, Evidence) {
        let common = Set(summary.epochNumbers).intersection(baseSummary.epochNumbers).filter { $0 <= (window ?? .max) }
            .sorted()
        guard let lastCommon = common.last else { return (.notEvaluated, .unavailable(.noCommonEpochs)) }
        // Learning speed is read on the held-out validation images when both runs have them, so the
        // test set is not used to judge; older suites without validation fall back to test accuracy.
        let validation = summary.hasValidation && baseSummary.hasValidation
        func curve(_ s: RunSummary) -> (Int) -> Double? { { s.curveAccuracy(atEpoch: $0, validation: validation) } }
        // An epoch evaluated before the running statistics settled says nothing about learning speed.
        let lagging = common.filter {
            summary.evaluationLagsTraining(atEpoch: $0, validation: validation)
                || baseSummary.evaluationLagsTraining(atEpoch: $0, validation: validation)
        }
        let pairs = finitePairs(common.filter { !lagging.contains($0) }, curve(summary), curve(baseSummary))
        guard let means = mean(pairs) else { return (.notEvaluated, .unavailable(.noCommonTestAccuracies)) }
        let threshold = accuracyThresholds.sorted().last {
            summary.epochToReach($0, withinEpochs: lastCommon, validation: validation) != nil
                || baseSummary.epochToReach($0, withinEpochs: lastCommon, validation: validation) != nil
        }
        let direction = Direction(difference: means.candidate - means.baseline, noiseMargin: noiseMargin)
        let statistics = ConvergenceStatistics(
            usesValidation: validation, commonEpochs: common, laggingEpochs: lagging, comparedEpochCount: pairs.count,
            accuracyAtLastCommonEpoch: Paired(curve(summary)(lastCommon), curve(baseSummary)(lastCommon)),
            meanTestAccuracy: means,
            threshold: threshold.map { threshold in
                ThresholdReached(
                    accuracy: threshold,
                    epochs: Paired(
                        summary.epochToReach(threshold, withinEpochs: lastCommon, validation: validation),
                        baseSummary.epochToReach(threshold, withinEpochs: lastCommon, validation: validation)))
            },
            meanTrainLoss: mean(finitePairs(common, summary.trainLoss, baseSummary.trainLoss)),
            direction: direction)
        let verdict: Verdict = direction == .ahead ? .supported : (direction == .behind ? .contradicted : .inconclusive)
        return (verdict, .convergence(statistics))
    }

    /// `final`: judged on the final model's test accuracy, else on the best over epochs.
    private func accuracy(
        _ summary: RunSummary, _ baseSummary: RunSummary, claimsHigher: Bool, final useFinal: Bool
    ) -> (Verdict, Evidence) {
        guard let best = summary.bestTestAccuracy, let baseBest = baseSummary.bestTestAccuracy,
            let judged = summary.judgedTestAccuracy(final: useFinal),
            let baseJudged = baseSummary.judgedTestAccuracy(final: useFinal)
        else {
            return (.notEvaluated, .unavailable(.noTestAccuracy))
        }
        let final = summary.finalTestAccuracy.flatMap { final in
            baseSummary.finalTestAccuracy.map { Paired(final, $0) }
        }
        let direction = Direction(difference: judged - baseJudged, noiseMargin: noiseMargin)
        let verdict: Verdict
        switch (direction, claimsHigher) {
        case (.ahead, true), (.behind, false), (.tied, false): verdict = .supported
        case (.behind, true), (.ahead, false): verdict = .contradicted
        case (.tied, true): verdict = .inconclusive
        }
        let statistics = AccuracyStatistics(
            claimsHigher: claimsHigher, usesFinalTestAccuracy: useFinal, bestTestAccuracy: Paired(best, baseBest),
            finalTestAccuracy: final,
            epochsCompleted: Paired(summary.epochsCompleted, baseSummary.epochsCompleted), direction: direction)
        return (verdict, .accuracy(statistics))
    }

    /// The first seed's numbers as evidence; with several seeds the claim holds when every seed
    /// reaches the target and fails when none does. Read on the final model's test accuracy when
    /// every seed has validation records, else on the best over epochs.
    private func reach(run: String, target: Double, replicates: [Replicate]) -> Comparison {
        guard let metrics = replicates.first?.metrics else {
            return Comparison(
                candidate: run, baseline: nil, verdict: .notEvaluated, evidence: .unavailable(.runMissing))
        }
        let final = replicates.allSatisfy { RunSummary($0.metrics).hasValidation }
        let summary = RunSummary(metrics)
        let statistics = ReachStatistics(
            target: target, usesFinalTestAccuracy: final, bestTestAccuracy: summary.bestTestAccuracy,
            finalTestAccuracy: summary.finalTestAccuracy, firstEpochReaching: summary.epochToReach(target),
            diverged: summary.diverged, epochsCompleted: summary.epochsCompleted, epochsPlanned: summary.epochsPlanned)
        let best = replicates.map { RunSummary($0.metrics).judgedTestAccuracy(final: final) ?? -1 }
        let reachedCount = best.filter { $0 >= target }.count
        let verdict: Verdict
        if replicates.count == 1 {
            verdict = statistics.reached ? .suggests : .suggestsAgainst
        } else {
            verdict =
                reachedCount == replicates.count ? .supported : (reachedCount == 0 ? .contradicted : .inconclusive)
        }
        return Comparison(
            candidate: run, baseline: nil, verdict: verdict, evidence: .reach(statistics),
            replicates: ReplicateComparison(
                measure: final ? .finalTestAccuracy : .bestTestAccuracy,
                values: Paired(
                    SeedValues(runs: replicates.map(\.name), values: best), SeedValues(runs: [], values: [])),
                threshold: target, epochsToReach: nil, comparedEpochs: []))
    }

    /// (candidate, baseline) values at each of `epochs` where both are recorded and finite.
    private func finitePairs(
        _ epochs: [Int], _ candidate: (Int) -> Double?, _ baseline: (Int) -> Double?
    ) -> [Paired<Double>] {
        epochs.compactMap { epoch in
            guard let a = candidate(epoch), let b = baseline(epoch), a.isFinite, b.isFinite else { return nil }
            return Paired(a, b)
        }
    }

    private func mean(_ pairs: [Paired<Double>]) -> Paired<Double>? {
        guard !pairs.isEmpty else { return nil }
        let n = Double(pairs.count)
        return Paired(pairs.map(\.candidate).reduce(0, +) / n, pairs.map(\.baseline).reduce(0, +) / n)
    }
}
