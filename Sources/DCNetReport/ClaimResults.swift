import Foundation

// What the claim evaluator finds: verdicts, directions and the statistics behind them (no text).

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

    public init(name: String, metrics: RunMetrics) { (self.name, self.metrics) = (name, metrics) }
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
