import Foundation

/// How a group's numbers are tested against the paper's claim.
public enum ClaimTest: Sendable, Equatable, Codable {
    /// Candidates learn faster than the baseline: higher mean test accuracy over the epochs both
    /// completed (the area under the learning curve), reported with the accuracy after those epochs
    /// and the epochs needed to reach the accuracy thresholds.
    case fasterConvergence
    /// Candidates reach a higher best test accuracy than the baseline.
    case higherAccuracy
    /// Candidates do not beat the baseline's best test accuracy (a claim that a variant does not
    /// help, e.g. the paper's finding on weighted operators).
    case noHigherAccuracy
    /// Every candidate reaches at least this test accuracy (fraction), e.g. training without
    /// batch normalization or ReLU.
    case reachesAccuracy(Double)
    /// Candidates keep a higher accuracy than the baseline under the same attacks.
    case moreRobust

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
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container,
                debugDescription:
                    "unknown claim test \"\(kind)\"; expected faster-convergence, higher-accuracy, no-higher-accuracy,"
                    + " reaches-accuracy or more-robust"
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
        }
    }
}

/// A set of runs that together test one claim of the paper.
///
/// JSON form (for a `groups.json` next to the suite):
/// `{"name": "operators", "claim": "TanhConv converges faster than ...", "runs": ["baseline", "tanh-cos"],
///   "baseline": "baseline", "test": {"kind": "faster-convergence"}}`
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

    public init(
        name: String, claim: String, runs: [String], baseline: String? = nil,
        test: ClaimTest = .fasterConvergence
    ) {
        self.name = name
        self.claim = claim
        self.runs = runs
        self.baseline = baseline
        self.test = test
    }

    public var baselineRun: String? { baseline ?? runs.first }

    /// Runs compared against the baseline.
    public var candidateRuns: [String] { runs.filter { $0 != baselineRun } }

    /// Reads a JSON array of groups.
    public static func load(from url: URL) throws -> [ExperimentGroup] {
        try JSONDecoder().decode([ExperimentGroup].self, from: Data(contentsOf: url))
    }
}
