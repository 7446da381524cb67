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
    /// A single seed on at least one side points in the claimed direction beyond the noise margin:
    /// without seed-to-seed spread there is no standard error, so this is never "supported".
    case suggests
    /// A single seed on at least one side points against the claim beyond the noise margin.
    case suggestsAgainst
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
    /// The first seed's numbers (the only seed's, for a single-seed comparison).
    public let evidence: Evidence
    /// Per-seed values and their mean difference; nil when nothing could be compared.
    public var replicates: ReplicateComparison? = nil
}

/// One trained instance of a setting: the setting `tanh` run with seed 2 is e.g. `tanh-s2`.
public struct Replicate: Sendable, Equatable {
    public var name: String
    public var metrics: RunMetrics

    public init(name: String, metrics: RunMetrics) {
        self.name = name
        self.metrics = metrics
    }
}

/// Values of one setting over its seeds.
public struct SeedValues: Sendable, Equatable {
    public let runs: [String]
    public let values: [Double]

    public init(runs: [String], values: [Double]) {
        self.runs = runs
        self.values = values
    }

    public var count: Int { values.count }
    public var mean: Double { values.reduce(0, +) / Double(values.count) }
    /// Sample standard deviation (n − 1); nil for a single seed, which says nothing about spread.
    public var standardDeviation: Double? {
        guard values.count > 1 else { return nil }
        let m = mean
        return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
    }
}

/// The verdict's quantity per seed for a candidate setting and its baseline.
public struct ReplicateComparison: Sendable, Equatable {
    public enum Measure: String, Sendable, Equatable {
        /// Mean validation (or test) accuracy over the compared epochs: the area under the curve.
        case meanValidationAccuracy, meanTestAccuracy
        case bestTestAccuracy
        /// Mean adversarial accuracy over the attack settings every replicate was evaluated under.
        case meanAdversarialAccuracy
    }

    public let measure: Measure
    public let values: Paired<SeedValues>
    /// Convergence only: the threshold quoted and the first epoch each seed reached it.
    public let threshold: Double?
    public let epochsToReach: Paired<[Int?]>?
    /// Convergence only: the epochs that entered the means.
    public let comparedEpochs: [Int]

    public var difference: Double { values.candidate.mean - values.baseline.mean }
    /// Two-sample standard error sqrt(s1²/n1 + s2²/n2); nil unless both sides have two or more seeds.
    public var standardError: Double? {
        guard let s1 = values.candidate.standardDeviation, let s2 = values.baseline.standardDeviation else {
            return nil
        }
        return (s1 * s1 / Double(values.candidate.count) + s2 * s2 / Double(values.baseline.count)).squareRoot()
    }
    public var isSingleSeed: Bool { standardError == nil }

    /// Ahead/behind when the mean difference exceeds twice its standard error; with a single seed on
    /// either side the noise margin stands in for it.
    public func direction(noiseMargin: Double) -> Direction {
        Direction(difference: difference, noiseMargin: standardError.map { 2 * $0 } ?? noiseMargin)
    }
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
    /// True: the curve is validation accuracy (both runs held images out); false: test accuracy.
    public let usesValidation: Bool
    /// Epochs both runs completed.
    public let commonEpochs: [Int]
    /// Epochs whose evaluation lagged training in either run: left out of the means.
    public let laggingEpochs: [Int]
    /// Epochs that entered the means.
    public let comparedEpochCount: Int
    public let accuracyAtLastCommonEpoch: Paired<Double?>
    /// Mean validation (else test) accuracy over the compared epochs: the area under the learning curve.
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
        evaluate(
            group, replicates: Dictionary(uniqueKeysWithValues: runs.map { ($0, [Replicate(name: $0, metrics: $1)]) }))
    }

    /// `replicates`: per setting named in the group, its seeds with usable data (first seed first).
    public func evaluate(_ group: ExperimentGroup, replicates: [String: [Replicate]]) -> ClaimResult {
        let present = replicates.filter { !$0.value.isEmpty }
        return ClaimResult(group: group, outcome: outcome(group, replicates: present))
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
            candidates.map { candidate in
                guard let metrics = runs[candidate] else {
                    return Comparison(
                        candidate: candidate, baseline: baseline, verdict: .notEvaluated,
                        evidence: .unavailable(.runMissing))
                }
                let peers = Paired(replicates[baseline]!.map(\.name), replicates[candidate]!.map(\.name))
                let (verdict, evidence) = compare(group.test, metrics, baseMetrics, peers: peers)
                let seeds = replicateComparison(group.test, replicates[candidate]!, replicates[baseline]!)
                return Comparison(
                    candidate: candidate, baseline: baseline,
                    verdict: combined(verdict, seeds, test: group.test), evidence: evidence, replicates: seeds)
            })
    }

    /// A single seed on either side caps the verdict at "suggests"; with seeds on both sides the
    /// mean difference must exceed twice its standard error.
    private func combined(_ firstSeed: Verdict, _ seeds: ReplicateComparison?, test: ClaimTest) -> Verdict {
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
        _ test: ClaimTest, _ candidates: [Replicate], _ baselines: [Replicate]
    ) -> ReplicateComparison? {
        switch test {
        case .fasterConvergence:
            return convergenceSeeds(candidates, baselines)
        case .higherAccuracy, .noHigherAccuracy:
            func values(_ replicates: [Replicate]) -> SeedValues {
                let best = replicates.compactMap { r in RunSummary(r.metrics).bestTestAccuracy.map { (r.name, $0) } }
                return SeedValues(runs: best.map(\.0), values: best.map(\.1))
            }
            let paired = Paired(values(candidates), values(baselines))
            guard paired.candidate.count > 0, paired.baseline.count > 0 else { return nil }
            return ReplicateComparison(
                measure: .bestTestAccuracy, values: paired, threshold: nil, epochsToReach: nil, comparedEpochs: [])
        case .moreRobust:
            return robustnessSeeds(candidates, baselines)
        case .reachesAccuracy:
            return nil
        }
    }

    /// Area under each seed's learning curve over the epochs every seed of both settings completed
    /// and evaluated with settled statistics; validation accuracy when every seed has it, because
    /// choosing or judging on the test set would leak it into the verdict.
    private func convergenceSeeds(_ candidates: [Replicate], _ baselines: [Replicate]) -> ReplicateComparison? {
        let candidateSummaries = candidates.map { RunSummary($0.metrics) }
        let baseSummaries = baselines.map { RunSummary($0.metrics) }
        let all = candidateSummaries + baseSummaries
        let validation = all.allSatisfy(\.hasValidation)
        var common = Set(all[0].epochNumbers)
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
        let threshold = accuracyThresholds.sorted().last { threshold in
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

    /// Mean adversarial accuracy per seed over the attack settings every seed of both settings was
    /// evaluated under. A black-box attack whose source is the other setting counts as the same
    /// setting on both sides: "baseline → tanh" is matched with "tanh → baseline", i.e. each network
    /// is attacked with examples transferred from the other.
    private func robustnessSeeds(_ candidates: [Replicate], _ baselines: [Replicate]) -> ReplicateComparison? {
        let candidateTables = candidates.map { attackTable($0.metrics, peers: baselines.map(\.name)) }
        let baseTables = baselines.map { attackTable($0.metrics, peers: candidates.map(\.name)) }
        var shared = Set(candidateTables.first?.keys ?? [:].keys)
        for table in candidateTables + baseTables { shared.formIntersection(table.keys) }
        guard !shared.isEmpty else { return nil }
        func values(_ replicates: [Replicate], _ tables: [[AttackTable.Key: Double]]) -> SeedValues {
            SeedValues(
                runs: replicates.map(\.name),
                values: tables.map { table in shared.map { table[$0]! }.reduce(0, +) / Double(shared.count) })
        }
        return ReplicateComparison(
            measure: .meanAdversarialAccuracy,
            values: Paired(values(candidates, candidateTables), values(baselines, baseTables)),
            threshold: nil, epochsToReach: nil, comparedEpochs: [])
    }

    /// Adversarial accuracy per attack setting, with a black-box source among `peers` renamed so the
    /// two directions of a transfer match.
    private func attackTable(_ metrics: RunMetrics, peers: [String]) -> [AttackTable.Key: Double] {
        var table: [AttackTable.Key: Double] = [:]
        for (key, record) in AttackTable.latest(metrics.attacks) {
            let source = key.source.map { peers.contains($0) ? ClaimEvaluator.peerSource : $0 }
            table[AttackTable.Key(setting: key.setting, source: source, epsilonPixels: key.epsilonPixels)] =
                record.adversarialAccuracy
        }
        return table
    }

    /// Stands for "the other setting of the comparison" in a black-box attack's source.
    static let peerSource = "\u{0}peer"

    private func compare(
        _ test: ClaimTest, _ metrics: RunMetrics, _ baseMetrics: RunMetrics, peers: Paired<[String]>
    ) -> (Verdict, Evidence) {
        switch test {
        case .fasterConvergence:
            return convergence(RunSummary(metrics), RunSummary(baseMetrics))
        case .higherAccuracy:
            return accuracy(RunSummary(metrics), RunSummary(baseMetrics), claimsHigher: true)
        case .noHigherAccuracy:
            return accuracy(RunSummary(metrics), RunSummary(baseMetrics), claimsHigher: false)
        case .moreRobust:
            return robustness(metrics, baseMetrics, peers: peers)
        case .reachesAccuracy:
            preconditionFailure("absolute claims are not comparisons")
        }
    }

    private func convergence(_ summary: RunSummary, _ baseSummary: RunSummary) -> (Verdict, Evidence) {
        let common = Set(summary.epochNumbers).intersection(baseSummary.epochNumbers).sorted()
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

    /// The first seed's numbers as evidence; with several seeds the claim holds when every seed
    /// reaches the target and fails when none does.
    private func reach(run: String, target: Double, replicates: [Replicate]) -> Comparison {
        guard let metrics = replicates.first?.metrics else {
            return Comparison(
                candidate: run, baseline: nil, verdict: .notEvaluated, evidence: .unavailable(.runMissing))
        }
        let summary = RunSummary(metrics)
        let statistics = ReachStatistics(
            target: target, bestTestAccuracy: summary.bestTestAccuracy,
            firstEpochReaching: summary.epochToReach(target), diverged: summary.diverged,
            epochsCompleted: summary.epochsCompleted, epochsPlanned: summary.epochsPlanned)
        let best = replicates.map { RunSummary($0.metrics).bestTestAccuracy ?? -1 }
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
                measure: .bestTestAccuracy,
                values: Paired(
                    SeedValues(runs: replicates.map(\.name), values: best), SeedValues(runs: [], values: [])),
                threshold: target, epochsToReach: nil, comparedEpochs: []))
    }

    private func robustness(
        _ metrics: RunMetrics, _ baseMetrics: RunMetrics, peers: Paired<[String]>
    ) -> (Verdict, Evidence) {
        let ours = attackTable(metrics, peers: peers.candidate)
        let theirs = attackTable(baseMetrics, peers: peers.baseline)
        let shared = ours.keys.filter { theirs[$0] != nil }.sorted()
        guard !shared.isEmpty else { return (.notEvaluated, .unavailable(.noMatchedAttacks)) }
        var ahead = 0, behind = 0
        var sumOurs = 0.0, sumTheirs = 0.0
        for key in shared {
            let (a, b) = (ours[key]!, theirs[key]!)
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
