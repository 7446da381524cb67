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
    /// With the group's `min_clean_accuracy`: every run's final clean test accuracy against the bar.
    public var cleanAccuracy: CleanAccuracyCheck? = nil

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
    /// The angular geometry of its penultimate test-set features, when they were exported
    /// (`dcnet-dist features`); read by the caller, since this module reads no safetensors.
    public var featureGeometry: FeatureGeometry?

    public init(name: String, metrics: RunMetrics, featureGeometry: FeatureGeometry? = nil) {
        (self.name, self.metrics, self.featureGeometry) = (name, metrics, featureGeometry)
    }
}

/// The runs of a group checked against its `min_clean_accuracy`.
public struct CleanAccuracyCheck: Sendable, Equatable {
    public struct Run: Sendable, Equatable {
        /// The group's setting (e.g. `tanh`) the run (e.g. `tanh-s2`) is a seed of.
        public let setting: String
        public let run: String
        /// The final model's test accuracy (``RunSummary/finalTestAccuracy``); nil when the run has
        /// none or is missing, which counts as not meeting the bar.
        public let accuracy: Double?
        public let meetsBar: Bool
    }

    public let bar: Double
    /// Every run directory of the group (each seed), in table order.
    public let runs: [Run]

    public var runsBelowBar: [Run] { runs.filter { !$0.meetsBar } }

    /// The runs of these settings that miss the bar.
    public func runsBelowBar(settings: [String]) -> [Run] { runsBelowBar.filter { settings.contains($0.setting) } }
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
        /// The highest test accuracy over epochs: picks on the test set, used only without validation
        /// records (older suites).
        case bestTestAccuracy
        /// The final model's test accuracy: used when every compared run has validation records.
        case finalTestAccuracy
        /// Mean adversarial accuracy over the attack settings every replicate was evaluated under.
        case meanAdversarialAccuracy
        /// Mean over the same attack settings of adversarial accuracy divided by the model's clean
        /// accuracy: robustness with the models' different clean accuracies taken out.
        case meanAdversarialFractionOfClean
        /// Mean intra-class angle over mean inter-class angle of the penultimate features.
        case featureAngleRatio
        /// The first epoch whose (validation) accuracy reaches the group's threshold; a seed that never
        /// reaches it counts as one epoch after its last.
        case epochsToThreshold

        /// True when a smaller value is the claimed direction (the angle ratio, epochs to a threshold).
        public var lowerIsBetter: Bool { self == .featureAngleRatio || self == .epochsToThreshold }
        /// True when the values are fractions shown in percent (all but the angle ratio and epochs).
        public var isAccuracy: Bool { self != .featureAngleRatio && self != .epochsToThreshold }
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

    /// Ahead/behind (in the claimed direction: lower for the angle ratio) when the mean difference
    /// exceeds twice its standard error; with a single seed on either side the noise margin stands
    /// in for it.
    public func direction(noiseMargin: Double) -> Direction {
        Direction(
            difference: measure.lowerIsBetter ? -difference : difference,
            noiseMargin: standardError.map { 2 * $0 } ?? noiseMargin)
    }
}

/// The numbers behind a verdict, per kind of test, or why there are none.
public enum Evidence: Sendable, Equatable {
    case unavailable(Unavailable)
    case convergence(ConvergenceStatistics)
    case accuracy(AccuracyStatistics)
    case reach(ReachStatistics)
    case robustness(RobustnessStatistics)
    case separation(SeparationStatistics)
}

public enum Unavailable: Sendable, Equatable {
    /// The compared run has no usable data.
    case runMissing
    case noCommonEpochs
    /// Epochs in common, but none with a finite test accuracy in both runs outside the lagging ones.
    case noCommonTestAccuracies
    case noTestAccuracy
    case noMatchedAttacks
    /// Runs of the comparison without feature geometry (no `features.safetensors`, or no
    /// finite angle ratio).
    case noFeatures([String])
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
    /// True: the verdict reads the final model's test accuracy (every compared run has validation
    /// records, so the test set chooses nothing); false: the best test accuracy over epochs.
    public var usesFinalTestAccuracy: Bool = false
    public let bestTestAccuracy: Paired<Double>
    public let finalTestAccuracy: Paired<Double>?
    public let epochsCompleted: Paired<Int>
    public let direction: Direction

    /// The verdict's quantity, candidate and baseline.
    public var judged: Paired<Double> {
        usesFinalTestAccuracy ? (finalTestAccuracy ?? bestTestAccuracy) : bestTestAccuracy
    }
}

public struct ReachStatistics: Sendable, Equatable {
    public let target: Double
    /// True: judged on the final model's test accuracy (the run has validation records); false: on
    /// the best test accuracy over epochs.
    public var usesFinalTestAccuracy: Bool = false
    public let bestTestAccuracy: Double?
    public var finalTestAccuracy: Double? = nil
    /// First epoch at or above the target, when it was reached.
    public let firstEpochReaching: Int?
    public let diverged: Bool
    public let epochsCompleted: Int
    public let epochsPlanned: Int?

    /// The verdict's quantity.
    public var judgedAccuracy: Double? { usesFinalTestAccuracy ? finalTestAccuracy : bestTestAccuracy }
    public var reached: Bool { judgedAccuracy.map { $0 >= target } ?? false }
}

public struct RobustnessStatistics: Sendable, Equatable {
    /// Attack settings (method, mode, source, ε) both runs were evaluated under.
    public let matchedSettings: Int
    public let meanAdversarialAccuracy: Paired<Double>
    public let ahead: Int
    public let behind: Int

    public var tied: Int { matchedSettings - ahead - behind }
}

public struct SeparationStatistics: Sendable, Equatable {
    /// The first seed with features of each side.
    public let runs: Paired<String>
    public let intraClassAngle: Paired<Double>
    public let interClassAngle: Paired<Double>
    /// Intra over inter: smaller is better separated.
    public let ratio: Paired<Double>
    /// Ahead: the candidate's ratio is smaller beyond the noise margin.
    public let direction: Direction
    /// Seeds of either side left out for want of features.
    public let runsWithoutFeatures: [String]
}
