import Foundation

/// How a group's numbers are tested against the paper's claim.
public enum ClaimTest: Sendable, Equatable, Codable {
    /// Candidates learn faster than the baseline: higher mean test accuracy over the epochs both
    /// completed (the area under the learning curve), reported with the accuracy after those epochs
    /// and the epochs needed to reach the accuracy thresholds.
    case fasterConvergence
    /// Candidates reach a higher test accuracy than the baseline: the final model's when every
    /// compared run has validation records (the test set then chooses nothing), else the best over
    /// epochs (older suites).
    case higherAccuracy
    /// Candidates do not beat the baseline's test accuracy, read as for `higherAccuracy` (a claim
    /// that a variant does not help, e.g. the paper's finding on weighted operators).
    case noHigherAccuracy
    /// Every candidate reaches at least this test accuracy (fraction), e.g. training without
    /// batch normalization or ReLU; read as for `higherAccuracy`.
    case reachesAccuracy(Double)
    /// Candidates keep a higher accuracy than the baseline under the same attacks.
    case moreRobust
    /// Candidates' penultimate features separate the classes better: a smaller ratio of the mean
    /// intra-class angle to the mean inter-class angle (``FeatureGeometry/ratio``). Needs the
    /// runs' features (`dcnet-dist features`), which the caller passes in with the replicates.
    case betterSeparation

    private enum CodingKeys: String, CodingKey { case kind, accuracy }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        switch kind {
        case "faster-convergence": self = .fasterConvergence
        case "higher-accuracy": self = .higherAccuracy
        case "no-higher-accuracy": self = .noHigherAccuracy
        case "reaches-accuracy": self = .reachesAccuracy(try container.decode(Double.self, forKey: .accuracy))
        case "more-robust": self = .moreRobust
        case "better-separation": self = .betterSeparation
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container,
                debugDescription:
                    "unknown claim test \"\(kind)\"; expected faster-convergence, higher-accuracy, no-higher-accuracy,"
                    + " reaches-accuracy, more-robust or better-separation"
            )
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .fasterConvergence: try container.encode("faster-convergence", forKey: .kind)
        case .higherAccuracy: try container.encode("higher-accuracy", forKey: .kind)
        case .noHigherAccuracy: try container.encode("no-higher-accuracy", forKey: .kind)
        case .reachesAccuracy(let accuracy):
            try container.encode("reaches-accuracy", forKey: .kind)
            try container.encode(accuracy, forKey: .accuracy)
        case .moreRobust: try container.encode("more-robust", forKey: .kind)
        case .betterSeparation: try container.encode("better-separation", forKey: .kind)
        }
    }
}

/// A set of runs that together test one claim of the paper.
///
/// JSON form (for a `groups.json` next to the suite):
/// `{"name": "operators", "claim": "TanhConv converges faster than ...", "runs": ["baseline", "tanh-cos"],
///   "baseline": "baseline", "test": {"kind": "faster-convergence"}}`, optionally with
/// `"min_clean_accuracy": 0.8` (see ``minCleanAccuracy``).
public struct ExperimentGroup: Sendable, Equatable, Codable {
    /// Section title; a file-name-safe form of it prefixes the plot files.
    public var name: String
    /// The paper's claim in words, quoted in the report.
    public var claim: String
    /// Run directory names inside the suite directory, in table order.
    public var runs: [String]
    /// The run the others are compared with; `nil` means the first of `runs`.
    public var baseline: String?
    public var test: ClaimTest
    /// The clean test accuracy (fraction) a model must reach for the claim to be about models that
    /// work, e.g. 0.8 for robustness. The report lists every run's final clean test accuracy against
    /// it and flags the verdict when a run misses it; the verdict itself is kept.
    public var minCleanAccuracy: Double?
    /// The pre-registered comparison this group answers ("P1"), or "exploratory"; nil in suites
    /// without a pre-registration.
    public var registration: String?
    /// Convergence only (`"test": {"kind": "faster-convergence", "epochs": 14, "threshold": 0.75}`):
    /// the mean accuracy is taken over epochs 1...`convergenceEpochs` only (e.g. those before the first
    /// learning-rate drop), and the epochs to `convergenceThreshold` get a verdict of their own.
    public var convergenceEpochs: Int?
    public var convergenceThreshold: Double?

    /// The name with its registration: "P1 accuracy (pre-registered)", "… (exploratory)".
    public var labelledName: String {
        guard registration != nil else { return name }
        return name + (isPreregistered ? " (pre-registered)" : " (exploratory)")
    }

    /// Whether the group answers a comparison registered before its runs.
    public var isPreregistered: Bool { registration.map { $0 != Self.exploratory } ?? false }
    public static let exploratory = "exploratory"

    public init(
        name: String, claim: String, runs: [String], baseline: String? = nil,
        test: ClaimTest = .fasterConvergence, minCleanAccuracy: Double? = nil, registration: String? = nil,
        convergenceEpochs: Int? = nil, convergenceThreshold: Double? = nil
    ) {
        self.name = name
        self.claim = claim
        self.runs = runs
        self.baseline = baseline
        self.test = test
        self.minCleanAccuracy = minCleanAccuracy
        self.registration = registration
        self.convergenceEpochs = convergenceEpochs
        self.convergenceThreshold = convergenceThreshold
    }

    private enum CodingKeys: String, CodingKey {
        case name, claim, runs, baseline, test, registration
        case minCleanAccuracy = "min_clean_accuracy"
    }
    private enum ConvergenceKeys: String, CodingKey { case epochs, threshold }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(claim, forKey: .claim)
        try container.encode(runs, forKey: .runs)
        try container.encodeIfPresent(baseline, forKey: .baseline)
        let testEncoder = container.superEncoder(forKey: .test)
        try test.encode(to: testEncoder)
        var window = testEncoder.container(keyedBy: ConvergenceKeys.self)
        try window.encodeIfPresent(convergenceEpochs, forKey: .epochs)
        try window.encodeIfPresent(convergenceThreshold, forKey: .threshold)
        try container.encodeIfPresent(minCleanAccuracy, forKey: .minCleanAccuracy)
        try container.encodeIfPresent(registration, forKey: .registration)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        claim = try container.decode(String.self, forKey: .claim)
        runs = try container.decode([String].self, forKey: .runs)
        baseline = try container.decodeIfPresent(String.self, forKey: .baseline)
        test = try container.decode(ClaimTest.self, forKey: .test)
        minCleanAccuracy = try container.decodeIfPresent(Double.self, forKey: .minCleanAccuracy)
        registration = try container.decodeIfPresent(String.self, forKey: .registration)
        let window = try container.nestedContainer(keyedBy: ConvergenceKeys.self, forKey: .test)
        convergenceEpochs = try window.decodeIfPresent(Int.self, forKey: .epochs)
        convergenceThreshold = try window.decodeIfPresent(Double.self, forKey: .threshold)
        if convergenceEpochs != nil || convergenceThreshold != nil, test != .fasterConvergence {
            throw DecodingError.dataCorruptedError(
                forKey: .test, in: container,
                debugDescription: "\"epochs\" and \"threshold\" belong to a faster-convergence test only")
        }
        if let e = convergenceEpochs, e <= 0 {
            throw DecodingError.dataCorruptedError(
                forKey: .test, in: container, debugDescription: "the convergence window must be ≥ 1 epoch (got \(e))")
        }
        if let t = convergenceThreshold, !(t > 0 && t < 1) {
            throw DecodingError.dataCorruptedError(
                forKey: .test, in: container,
                debugDescription: "the convergence threshold must be a fraction in (0, 1) (got \(t))")
        }
        // A fraction, like every accuracy in the groups: 80 (percent) would fail every run.
        if let bar = minCleanAccuracy, !(0...1).contains(bar) {
            throw DecodingError.dataCorruptedError(
                forKey: .minCleanAccuracy, in: container,
                debugDescription: "min_clean_accuracy must be a fraction in [0, 1] (got \(bar))")
        }
    }

    public var baselineRun: String? { baseline ?? runs.first }

    /// Runs compared against the baseline.
    public var candidateRuns: [String] { runs.filter { $0 != baselineRun } }

    /// Reads a JSON array of groups.
    public static func load(from url: URL) throws -> [ExperimentGroup] {
        try JSONDecoder().decode([ExperimentGroup].self, from: Data(contentsOf: url))
    }
}
