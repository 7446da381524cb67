import Foundation

// The JSON-lines schema of `metrics.jsonl` (written by the trainer) and `attacks.jsonl` (written
// by `dcnet-dist attack`). Every line is one object with `"kind"` and `"schema"`; the field names
// are those of the files written before the schema existed, so old files and the Python and bash
// readers in scripts/ and Tests/integration/ keep working. Measurements are optional: older runs
// lack fields added later, and the report prints "—" for what is missing instead of refusing the
// whole file. Accuracies are fractions in [0, 1].

/// First line of a run (and again after every `--resume`): what was run, from which commit.
public struct RunConfig: Sendable, Equatable, Codable {
    public var run: String?
    /// The trainer's `TrainingConfig`, untyped (see ``JSONValue``).
    public var config: JSONValue?
    /// Source revision passed in by the launcher (`DCNET_COMMIT`); the binary does not know it.
    public var commit: String?
    /// ISO 8601.
    public var date: String?
    public var command: String?
    public var ranks: Int?
    public var parameters: Int?
    /// The GEMM precision the run trains in (`fp32` or `bf16`; absent before it existed: fp32).
    public var precision: String?

    public init(
        run: String? = nil, config: JSONValue? = nil, commit: String? = nil, date: String? = nil,
        command: String? = nil, ranks: Int? = nil, parameters: Int? = nil, precision: String? = nil
    ) {
        self.run = run
        self.config = config
        self.commit = commit
        self.date = date
        self.command = command
        self.ranks = ranks
        self.parameters = parameters
        self.precision = precision
    }
}

/// A periodic training-progress line (every `--log-every` steps and at the end of each epoch);
/// loss and accuracy are means over the steps since the previous progress line.
public struct ProgressRecord: Sendable, Equatable, Codable {
    public var step: Int
    public var epoch: Int?
    public var loss: Double?
    public var accuracy: Double?
    public var imagesPerSecond: Double?
    public var learningRate: Double?
    public var etaSeconds: Double?
    /// The rank that computed longest in the interval and its excess over the median rank; only
    /// with more than one rank.
    public var slowestRank: Int?
    public var slowestHost: String?
    public var slowestExcess: Double?
    /// Of this rank's wall time over the interval, the share spent waiting for gradient all-reduces
    /// after backward ended (the communication the overlap did not hide).
    public var exposedCommunicationShare: Double?

    public init(
        step: Int, epoch: Int? = nil, loss: Double? = nil, accuracy: Double? = nil,
        imagesPerSecond: Double? = nil, learningRate: Double? = nil, etaSeconds: Double? = nil,
        slowestRank: Int? = nil, slowestHost: String? = nil, slowestExcess: Double? = nil,
        exposedCommunicationShare: Double? = nil
    ) {
        self.step = step
        self.epoch = epoch
        self.loss = loss
        self.accuracy = accuracy
        self.imagesPerSecond = imagesPerSecond
        self.learningRate = learningRate
        self.etaSeconds = etaSeconds
        self.slowestRank = slowestRank
        self.slowestHost = slowestHost
        self.slowestExcess = slowestExcess
        self.exposedCommunicationShare = exposedCommunicationShare
    }

    enum CodingKeys: String, CodingKey {
        case step, epoch, loss, accuracy
        case imagesPerSecond = "images_per_s", learningRate = "lr", etaSeconds = "eta_s"
        case slowestRank = "slowest_rank", slowestHost = "slowest_host", slowestExcess = "slowest_excess"
        case exposedCommunicationShare = "exposed_communication"
    }
}

/// End-of-epoch summary; the test-set fields only on epochs that were evaluated (`--eval-every`).
public struct EpochRecord: Sendable, Equatable, Codable {
    public var epoch: Int
    public var step: Int?
    public var trainLoss: Double?
    public var trainAccuracy: Double?
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var imagesPerSecond: Double?
    public var wallSeconds: Double?
    public var learningRate: Double?
    /// On the images held out by `--validation` (absent without it).
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    /// Per decoupled layer with a radius: the mean operator radius rho over its output channels and
    /// the running mean patch norm m it is built from, at the end of the epoch.
    public var operatorRadius: [String: Double]?
    public var patchNorm: [String: Double]?

    public init(
        epoch: Int, step: Int? = nil, trainLoss: Double? = nil, trainAccuracy: Double? = nil,
        testLoss: Double? = nil, testAccuracy: Double? = nil, imagesPerSecond: Double? = nil,
        wallSeconds: Double? = nil, learningRate: Double? = nil
    ) {
        self.epoch = epoch
        self.step = step
        self.trainLoss = trainLoss
        self.trainAccuracy = trainAccuracy
        self.testLoss = testLoss
        self.testAccuracy = testAccuracy
        self.imagesPerSecond = imagesPerSecond
        self.wallSeconds = wallSeconds
        self.learningRate = learningRate
    }

    enum CodingKeys: String, CodingKey {
        case epoch, step
        case trainLoss = "train_loss", trainAccuracy = "train_accuracy"
        case testLoss = "test_loss", testAccuracy = "test_accuracy"
        case validationLoss = "validation_loss", validationAccuracy = "validation_accuracy"
        case imagesPerSecond = "images_per_s", wallSeconds = "wall_s", learningRate = "lr"
        case operatorRadius = "operator_radius", patchNorm = "patch_norm"
    }
}

/// A test-set evaluation outside the epoch records: written when training stops before its last
/// epoch (`--max-steps`), so the state the run ended in has a test accuracy too.
public struct EvaluationRecord: Sendable, Equatable, Codable {
    public var step: Int
    public var testLoss: Double?
    public var testAccuracy: Double?

    public init(step: Int, testLoss: Double? = nil, testAccuracy: Double? = nil) {
        self.step = step
        self.testLoss = testLoss
        self.testAccuracy = testAccuracy
    }

    enum CodingKeys: String, CodingKey {
        case step
        case testLoss = "test_loss", testAccuracy = "test_accuracy"
    }
}

/// White-box attacks are crafted on the evaluated model itself; black-box (transfer) attacks are
/// crafted on `source` and evaluated on this model.
public enum AttackMode: String, Sendable, Equatable, Hashable, Codable, Comparable {
    case whiteBox = "white-box"
    case blackBox = "black-box"

    public static func < (lhs: AttackMode, rhs: AttackMode) -> Bool { lhs.rawValue > rhs.rawValue }
}

/// One adversarial evaluation: accuracy of a model on `images` test images perturbed by `method`
/// with an L∞ budget of `epsilonPixels` (in 0–255 pixel units).
public struct AttackRecord: Sendable, Equatable, Codable {
    public var method: String
    public var mode: AttackMode
    /// The run the attack was crafted on (the target itself for white-box attacks).
    public var source: String?
    public var target: String?
    public var epsilonPixels: Double
    /// The budget in model (scaled-input) units, per channel.
    public var epsilonModel: [Double]?
    public var steps: Int?
    public var stepSizePixels: Double?
    public var cleanAccuracy: Double?
    public var adversarialAccuracy: Double
    public var images: Int?
    public var maxPerturbationPixels: Double?
    /// Seed of the PGD random start.
    public var seed: UInt64?
    /// ISO 8601.
    public var date: String?

    public init(
        method: String, mode: AttackMode, source: String? = nil, target: String? = nil, epsilonPixels: Double,
        epsilonModel: [Double]? = nil, steps: Int? = nil, stepSizePixels: Double? = nil,
        cleanAccuracy: Double? = nil, adversarialAccuracy: Double, images: Int? = nil,
        maxPerturbationPixels: Double? = nil, seed: UInt64? = nil, date: String? = nil
    ) {
        self.method = method
        self.mode = mode
        self.source = source
        self.target = target
        self.epsilonPixels = epsilonPixels
        self.epsilonModel = epsilonModel
        self.steps = steps
        self.stepSizePixels = stepSizePixels
        self.cleanAccuracy = cleanAccuracy
        self.adversarialAccuracy = adversarialAccuracy
        self.images = images
        self.maxPerturbationPixels = maxPerturbationPixels
        self.seed = seed
        self.date = date
    }

    enum CodingKeys: String, CodingKey {
        case method, mode, source, target, steps, images, seed, date
        case epsilonPixels = "epsilon_pixels", epsilonModel = "epsilon_model", stepSizePixels = "step_size_pixels"
        case cleanAccuracy = "clean_accuracy", adversarialAccuracy = "adversarial_accuracy"
        case maxPerturbationPixels = "max_perturbation_pixels"
    }
}

/// One line of a metrics or attacks file: the record and its kind. This is the unit every writer
/// writes and every reader reads, so `kind` and `schema` are handled here and nowhere else.
public enum MetricsRecord: Sendable, Equatable, Codable {
    case config(RunConfig)
    case progress(ProgressRecord)
    case epoch(EpochRecord)
    case evaluation(EvaluationRecord)
    case attack(AttackRecord)
    /// A kind this version does not know; kept (not refused) so that a newer writer adding a kind
    /// within the same schema version does not break older readers.
    case unknown(kind: String)

    /// The schema version written on every line. Version 1 is the format written before the
    /// field existed, so a line without `schema` is version 1. A reader refuses a newer version
    /// instead of guessing: a version is only bumped when a field changes meaning.
    public static let schemaVersion = 1

    public var kind: String {
        switch self {
        case .config: return "config"
        case .progress: return "progress"
        case .epoch: return "epoch"
        case .evaluation: return "evaluation"
        case .attack: return "attack"
        case .unknown(let kind): return kind
        }
    }

    enum HeaderKeys: String, CodingKey { case kind, schema }

    public init(from decoder: Decoder) throws {
        let header = try decoder.container(keyedBy: HeaderKeys.self)
        let schema = try header.decodeIfPresent(Int.self, forKey: .schema) ?? 1
        guard schema == MetricsRecord.schemaVersion else {
            throw MetricsSchemaError(schema: schema)
        }
        let kind = try header.decode(String.self, forKey: .kind)
        switch kind {
        case "config": self = .config(try RunConfig(from: decoder))
        case "progress": self = .progress(try ProgressRecord(from: decoder))
        case "epoch": self = .epoch(try EpochRecord(from: decoder))
        case "evaluation": self = .evaluation(try EvaluationRecord(from: decoder))
        case "attack": self = .attack(try AttackRecord(from: decoder))
        default: self = .unknown(kind: kind)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var header = encoder.container(keyedBy: HeaderKeys.self)
        try header.encode(kind, forKey: .kind)
        try header.encode(MetricsRecord.schemaVersion, forKey: .schema)
        switch self {
        case .config(let record): try record.encode(to: encoder)
        case .progress(let record): try record.encode(to: encoder)
        case .epoch(let record): try record.encode(to: encoder)
        case .evaluation(let record): try record.encode(to: encoder)
        case .attack(let record): try record.encode(to: encoder)
        case .unknown: break
        }
    }

    /// The record as one JSON line without its newline. Keys are sorted so that equal records
    /// are equal lines; non-finite numbers (a diverged loss) become the strings "NaN" and
    /// "±Infinity" because JSON has no literal for them.
    public func jsonLine() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = MetricsRecord.nonFiniteEncoding
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Decodes one line (without its newline).
    public init(jsonLine line: String) throws {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = MetricsRecord.nonFiniteDecoding
        self = try decoder.decode(MetricsRecord.self, from: Data(line.utf8))
    }

    static let nonFiniteEncoding = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    static let nonFiniteDecoding = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
}

/// A line written with a schema version this reader does not know.
public struct MetricsSchemaError: Error, Equatable, CustomStringConvertible {
    public let schema: Int

    public var description: String {
        "schema version \(schema) is not supported (this dcnet-dist reads version \(MetricsRecord.schemaVersion); "
            + (schema > MetricsRecord.schemaVersion ? "the file was written by a newer dcnet-dist)" : "invalid)")
    }
}
