import Foundation

/// How the numbers bear on a paper's claim.
public enum Verdict: Sendable, Equatable {
    case supported
    /// The numbers go against the claim by more than the noise margin.
    case contradicted
    /// Within the noise margin: the claim is not supported, but not refuted either.
    case inconclusive
    /// Robustness only: ahead under some attack settings and behind under others.
    case mixed
    /// Data needed for the comparison is missing.
    case notEvaluated
}

/// The sign of a difference once differences within the noise margin count as ties.
public enum Direction: Sendable, Equatable {
    case ahead, behind, tied

    public init(difference: Double, noiseMargin: Double) {
        if difference > noiseMargin {
            self = .ahead
        } else if difference < -noiseMargin {
            self = .behind
        } else {
            self = .tied
        }
    }
}

/// A candidate's value next to the baseline's.
public struct Paired<Value> {
    public var candidate: Value
    public var baseline: Value

    public init(_ candidate: Value, _ baseline: Value) {
        self.candidate = candidate
        self.baseline = baseline
    }
}

extension Paired: Equatable where Value: Equatable {}
extension Paired: Sendable where Value: Sendable {}

/// The test of one group against its claim, before any of it is put into words.
public struct ClaimResult: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        case noRuns
        /// A comparative claim with a single run.
        case singleRun(String)
        case baselineMissing(String)
        case comparisons([Comparison])
    }

    public let group: ExperimentGroup
    public let outcome: Outcome

    /// The verdict per compared run (empty when nothing could be compared).
    public var verdicts: [Verdict] {
        if case .comparisons(let comparisons) = outcome { return comparisons.map(\.verdict) }
        return []
    }
}

/// One candidate tested against the baseline, or for an absolute claim one run against the target.
public struct Comparison: Sendable, Equatable {
    public let candidate: String
    /// Nil for an absolute claim (reaching an accuracy), which tests each run on its own.
    public let baseline: String?
    public let verdict: Verdict
    public let evidence: Evidence
}

/// The numbers behind a verdict, per kind of test, or why there are none.
public enum Evidence: Sendable, Equatable {
    case unavailable(Unavailable)
    case convergence(ConvergenceStatistics)
    case accuracy(AccuracyStatistics)
    case reach(ReachStatistics)
    case robustness(RobustnessStatistics)
}

public enum Unavailable: Sendable, Equatable {
    /// The compared run has no usable data.
    case runMissing
    case noCommonEpochs
    /// Epochs in common, but none with a finite test accuracy in both runs outside the lagging ones.
    case noCommonTestAccuracies
    case noTestAccuracy
    case noMatchedAttacks
}

public struct ConvergenceStatistics: Sendable, Equatable {
    /// Epochs both runs completed.
    public let commonEpochs: [Int]
    /// Epochs whose evaluation lagged training in either run: left out of the means.
    public let laggingEpochs: [Int]
    /// Epochs that entered the means.
    public let comparedEpochCount: Int
    public let accuracyAtLastCommonEpoch: Paired<Double?>
    /// Mean test accuracy over the compared epochs: the area under the learning curve.
    public let meanTestAccuracy: Paired<Double>
    /// The highest threshold either run reached within the common epochs.
    public let threshold: ThresholdReached?
    public let meanTrainLoss: Paired<Double>?
    public let direction: Direction

    public var lastCommonEpoch: Int { commonEpochs.last! }
}

public struct ThresholdReached: Sendable, Equatable {
    public let accuracy: Double
    /// The first epoch each run reached it, nil if not within the common epochs.
    public let epochs: Paired<Int?>
}

public struct AccuracyStatistics: Sendable, Equatable {
    /// True: the claim is that the candidate is more accurate; false: that it is not.
    public let claimsHigher: Bool
    public let bestTestAccuracy: Paired<Double>
    public let finalTestAccuracy: Paired<Double>?
    public let epochsCompleted: Paired<Int>
    public let direction: Direction
}

public struct ReachStatistics: Sendable, Equatable {
    public let target: Double
    public let bestTestAccuracy: Double?
    /// First epoch at or above the target, when it was reached.
    public let firstEpochReaching: Int?
    public let diverged: Bool
    public let epochsCompleted: Int
    public let epochsPlanned: Int?

    public var reached: Bool { bestTestAccuracy.map { $0 >= target } ?? false }
}

public struct RobustnessStatistics: Sendable, Equatable {
    /// Attack settings (method, mode, source, ε) both runs were evaluated under.
    public let matchedSettings: Int
    public let meanAdversarialAccuracy: Paired<Double>
    public let ahead: Int
    public let behind: Int

    public var tied: Int { matchedSettings - ahead - behind }
}

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
        ClaimResult(group: group, outcome: outcome(group, runs: runs))
    }

    private func outcome(_ group: ExperimentGroup, runs: [String: RunMetrics]) -> ClaimResult.Outcome {
        guard let baseline = group.baselineRun else { return .noRuns }
        let candidates = group.candidateRuns
        if case .reachesAccuracy(let target) = group.test {
            // Absolute claim: the baseline is context, not a comparison partner.
            let tested = candidates.isEmpty ? [baseline] : candidates
            return .comparisons(tested.map { reach(run: $0, target: target, runs: runs) })
        }
        guard !candidates.isEmpty else { return .singleRun(baseline) }
        guard let baseMetrics = runs[baseline] else { return .baselineMissing(baseline) }
        return .comparisons(
            candidates.map { candidate in
                guard let metrics = runs[candidate] else {
                    return Comparison(
                        candidate: candidate, baseline: baseline, verdict: .notEvaluated,
                        evidence: .unavailable(.runMissing))
                }
                let (verdict, evidence) = compare(group.test, metrics, baseMetrics)
                return Comparison(candidate: candidate, baseline: baseline, verdict: verdict, evidence: evidence)
            })
    }

    private func compare(
        _ test: ClaimTest, _ metrics: RunMetrics, _ baseMetrics: RunMetrics
    ) -> (Verdict, Evidence) {
        switch test {
        case .fasterConvergence:
            return convergence(RunSummary(metrics), RunSummary(baseMetrics))
        case .higherAccuracy:
            return accuracy(RunSummary(metrics), RunSummary(baseMetrics), claimsHigher: true)
        case .noHigherAccuracy:
            return accuracy(RunSummary(metrics), RunSummary(baseMetrics), claimsHigher: false)
        case .moreRobust:
            return robustness(metrics, baseMetrics)
        case .reachesAccuracy:
            preconditionFailure("absolute claims are not comparisons")
        }
    }

    private func convergence(_ summary: RunSummary, _ baseSummary: RunSummary) -> (Verdict, Evidence) {
        let common = Set(summary.epochNumbers).intersection(baseSummary.epochNumbers).sorted()
        guard let lastCommon = common.last else { return (.notEvaluated, .unavailable(.noCommonEpochs)) }
        // An epoch evaluated before the running statistics settled says nothing about learning speed.
        let lagging = common.filter {
            summary.evaluationLagsTraining(atEpoch: $0) || baseSummary.evaluationLagsTraining(atEpoch: $0)
        }
        let pairs = finitePairs(common.filter { !lagging.contains($0) }, summary.testAccuracy, baseSummary.testAccuracy)
        guard let means = mean(pairs) else { return (.notEvaluated, .unavailable(.noCommonTestAccuracies)) }
        let threshold = accuracyThresholds.sorted().last {
            summary.epochToReach($0, withinEpochs: lastCommon) != nil
                || baseSummary.epochToReach($0, withinEpochs: lastCommon) != nil
        }
        let direction = Direction(difference: means.candidate - means.baseline, noiseMargin: noiseMargin)
        let statistics = ConvergenceStatistics(
            commonEpochs: common, laggingEpochs: lagging, comparedEpochCount: pairs.count,
            accuracyAtLastCommonEpoch: Paired(
                summary.testAccuracy(atEpoch: lastCommon), baseSummary.testAccuracy(atEpoch: lastCommon)),
            meanTestAccuracy: means,
            threshold: threshold.map { threshold in
                ThresholdReached(
                    accuracy: threshold,
                    epochs: Paired(
                        summary.epochToReach(threshold, withinEpochs: lastCommon),
                        baseSummary.epochToReach(threshold, withinEpochs: lastCommon)))
            },
            meanTrainLoss: mean(finitePairs(common, summary.trainLoss, baseSummary.trainLoss)),
            direction: direction)
        let verdict: Verdict = direction == .ahead ? .supported : (direction == .behind ? .contradicted : .inconclusive)
        return (verdict, .convergence(statistics))
    }

    private func accuracy(
        _ summary: RunSummary, _ baseSummary: RunSummary, claimsHigher: Bool
    ) -> (Verdict, Evidence) {
        guard let best = summary.bestTestAccuracy, let baseBest = baseSummary.bestTestAccuracy else {
            return (.notEvaluated, .unavailable(.noTestAccuracy))
        }
        let final = summary.finalTestAccuracy.flatMap { final in
            baseSummary.finalTestAccuracy.map { Paired(final, $0) }
        }
        let direction = Direction(difference: best - baseBest, noiseMargin: noiseMargin)
        let verdict: Verdict
        switch (direction, claimsHigher) {
        case (.ahead, true), (.behind, false), (.tied, false): verdict = .supported
        case (.behind, true), (.ahead, false): verdict = .contradicted
        case (.tied, true): verdict = .inconclusive
        }
        let statistics = AccuracyStatistics(
            claimsHigher: claimsHigher, bestTestAccuracy: Paired(best, baseBest), finalTestAccuracy: final,
            epochsCompleted: Paired(summary.epochsCompleted, baseSummary.epochsCompleted), direction: direction)
        return (verdict, .accuracy(statistics))
    }

    private func reach(run: String, target: Double, runs: [String: RunMetrics]) -> Comparison {
        guard let metrics = runs[run] else {
            return Comparison(
                candidate: run, baseline: nil, verdict: .notEvaluated, evidence: .unavailable(.runMissing))
        }
        let summary = RunSummary(metrics)
        let statistics = ReachStatistics(
            target: target, bestTestAccuracy: summary.bestTestAccuracy,
            firstEpochReaching: summary.epochToReach(target), diverged: summary.diverged,
            epochsCompleted: summary.epochsCompleted, epochsPlanned: summary.epochsPlanned)
        return Comparison(
            candidate: run, baseline: nil, verdict: statistics.reached ? .supported : .contradicted,
            evidence: .reach(statistics))
    }

    private func robustness(_ metrics: RunMetrics, _ baseMetrics: RunMetrics) -> (Verdict, Evidence) {
        let ours = AttackTable.latest(metrics.attacks)
        let theirs = AttackTable.latest(baseMetrics.attacks)
        let shared = ours.keys.filter { theirs[$0] != nil }.sorted()
        guard !shared.isEmpty else { return (.notEvaluated, .unavailable(.noMatchedAttacks)) }
        var ahead = 0, behind = 0
        var sumOurs = 0.0, sumTheirs = 0.0
        for key in shared {
            let (a, b) = (ours[key]!.adversarialAccuracy, theirs[key]!.adversarialAccuracy)
            switch Direction(difference: a - b, noiseMargin: noiseMargin) {
            case .ahead: ahead += 1
            case .behind: behind += 1
            case .tied: break
            }
            sumOurs += a
            sumTheirs += b
        }
        let count = Double(shared.count)
        let verdict: Verdict
        switch (ahead > 0, behind > 0) {
        case (true, false): verdict = .supported
        case (false, true): verdict = .contradicted
        case (true, true): verdict = .mixed
        case (false, false): verdict = .inconclusive
        }
        let statistics = RobustnessStatistics(
            matchedSettings: shared.count, meanAdversarialAccuracy: Paired(sumOurs / count, sumTheirs / count),
            ahead: ahead, behind: behind)
        return (verdict, .robustness(statistics))
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
