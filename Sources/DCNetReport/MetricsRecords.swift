import Foundation

// The record types mirror the JSON lines the trainer writes to `metrics.jsonl` and the attack
// command writes to `attacks.jsonl`. Every record is one JSON object with a `"kind"` field.
// Measurements are optional: a diverged run may write `null` for a loss, and older runs may lack
// fields that were added later; the report prints "—" for what is missing instead of refusing
// the whole file. Accuracies are fractions in [0, 1].

/// First line of a run (and again after every `--resume`): what was run, from which commit.
public struct RunConfig: Sendable, Equatable, Codable {
    public var run: String?
    public var config: JSONValue?
    public var commit: String?
    public var date: String?
    public var command: String?

    public init(
        run: String? = nil, config: JSONValue? = nil, commit: String? = nil,
        date: String? = nil, command: String? = nil
    ) {
        self.run = run
        self.config = config
        self.commit = commit
        self.date = date
        self.command = command
    }

    enum CodingKeys: String, CodingKey { case kind, run, config, commit, date, command }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        run = try container.decodeIfPresent(String.self, forKey: .run)
        config = try container.decodeIfPresent(JSONValue.self, forKey: .config)
        commit = try container.decodeIfPresent(String.self, forKey: .commit)
        date = try container.decodeIfPresent(String.self, forKey: .date)
        command = try container.decodeIfPresent(String.self, forKey: .command)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("config", forKey: .kind)
        try container.encodeIfPresent(run, forKey: .run)
        try container.encodeIfPresent(config, forKey: .config)
        try container.encodeIfPresent(commit, forKey: .commit)
        try container.encodeIfPresent(date, forKey: .date)
        try container.encodeIfPresent(command, forKey: .command)
    }
}

/// A periodic training-progress line (every few steps).
public struct ProgressRecord: Sendable, Equatable, Codable {
    public var step: Int
    public var epoch: Int?
    public var loss: Double?
    public var accuracy: Double?
    public var imagesPerSecond: Double?
    public var learningRate: Double?
    public var etaSeconds: Double?

    public init(
        step: Int, epoch: Int? = nil, loss: Double? = nil, accuracy: Double? = nil,
        imagesPerSecond: Double? = nil, learningRate: Double? = nil, etaSeconds: Double? = nil
    ) {
        self.step = step
        self.epoch = epoch
        self.loss = loss
        self.accuracy = accuracy
        self.imagesPerSecond = imagesPerSecond
        self.learningRate = learningRate
        self.etaSeconds = etaSeconds
    }

    enum CodingKeys: String, CodingKey {
        case kind, step, epoch, loss, accuracy
        case imagesPerSecond = "images_per_s", learningRate = "lr", etaSeconds = "eta_s"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        step = try container.decode(Int.self, forKey: .step)
        epoch = try container.decodeIfPresent(Int.self, forKey: .epoch)
        loss = try container.decodeIfPresent(Double.self, forKey: .loss)
        accuracy = try container.decodeIfPresent(Double.self, forKey: .accuracy)
        imagesPerSecond = try container.decodeIfPresent(Double.self, forKey: .imagesPerSecond)
        learningRate = try container.decodeIfPresent(Double.self, forKey: .learningRate)
        etaSeconds = try container.decodeIfPresent(Double.self, forKey: .etaSeconds)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("progress", forKey: .kind)
        try container.encode(step, forKey: .step)
        try container.encodeIfPresent(epoch, forKey: .epoch)
        try container.encodeIfPresent(loss, forKey: .loss)
        try container.encodeIfPresent(accuracy, forKey: .accuracy)
        try container.encodeIfPresent(imagesPerSecond, forKey: .imagesPerSecond)
        try container.encodeIfPresent(learningRate, forKey: .learningRate)
        try container.encodeIfPresent(etaSeconds, forKey: .etaSeconds)
    }
}

/// End-of-epoch summary with the test-set evaluation.
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
        case kind, epoch, step
        case trainLoss = "train_loss", trainAccuracy = "train_accuracy"
        case testLoss = "test_loss", testAccuracy = "test_accuracy"
        case imagesPerSecond = "images_per_s", wallSeconds = "wall_s", learningRate = "lr"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try container.decode(Int.self, forKey: .epoch)
        step = try container.decodeIfPresent(Int.self, forKey: .step)
        trainLoss = try container.decodeIfPresent(Double.self, forKey: .trainLoss)
        trainAccuracy = try container.decodeIfPresent(Double.self, forKey: .trainAccuracy)
        testLoss = try container.decodeIfPresent(Double.self, forKey: .testLoss)
        testAccuracy = try container.decodeIfPresent(Double.self, forKey: .testAccuracy)
        imagesPerSecond = try container.decodeIfPresent(Double.self, forKey: .imagesPerSecond)
        wallSeconds = try container.decodeIfPresent(Double.self, forKey: .wallSeconds)
        learningRate = try container.decodeIfPresent(Double.self, forKey: .learningRate)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("epoch", forKey: .kind)
        try container.encode(epoch, forKey: .epoch)
        try container.encodeIfPresent(step, forKey: .step)
        try container.encodeIfPresent(trainLoss, forKey: .trainLoss)
        try container.encodeIfPresent(trainAccuracy, forKey: .trainAccuracy)
        try container.encodeIfPresent(testLoss, forKey: .testLoss)
        try container.encodeIfPresent(testAccuracy, forKey: .testAccuracy)
        try container.encodeIfPresent(imagesPerSecond, forKey: .imagesPerSecond)
        try container.encodeIfPresent(wallSeconds, forKey: .wallSeconds)
        try container.encodeIfPresent(learningRate, forKey: .learningRate)
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
    public var source: String?
    public var epsilonPixels: Double
    public var steps: Int?
    public var cleanAccuracy: Double?
    public var adversarialAccuracy: Double
    public var images: Int?

    public init(
        method: String, mode: AttackMode, source: String? = nil, epsilonPixels: Double,
        steps: Int? = nil, cleanAccuracy: Double? = nil, adversarialAccuracy: Double,
        images: Int? = nil
    ) {
        self.method = method
        self.mode = mode
        self.source = source
        self.epsilonPixels = epsilonPixels
        self.steps = steps
        self.cleanAccuracy = cleanAccuracy
        self.adversarialAccuracy = adversarialAccuracy
        self.images = images
    }

    enum CodingKeys: String, CodingKey {
        case kind, method, mode, source, steps, images
        case epsilonPixels = "epsilon_pixels", cleanAccuracy = "clean_accuracy"
        case adversarialAccuracy = "adversarial_accuracy"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        method = try container.decode(String.self, forKey: .method)
        mode = try container.decode(AttackMode.self, forKey: .mode)
        source = try container.decodeIfPresent(String.self, forKey: .source)
        epsilonPixels = try container.decode(Double.self, forKey: .epsilonPixels)
        steps = try container.decodeIfPresent(Int.self, forKey: .steps)
        cleanAccuracy = try container.decodeIfPresent(Double.self, forKey: .cleanAccuracy)
        adversarialAccuracy = try container.decode(Double.self, forKey: .adversarialAccuracy)
        images = try container.decodeIfPresent(Int.self, forKey: .images)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("attack", forKey: .kind)
        try container.encode(method, forKey: .method)
        try container.encode(mode, forKey: .mode)
        try container.encodeIfPresent(source, forKey: .source)
        try container.encode(epsilonPixels, forKey: .epsilonPixels)
        try container.encodeIfPresent(steps, forKey: .steps)
        try container.encodeIfPresent(cleanAccuracy, forKey: .cleanAccuracy)
        try container.encode(adversarialAccuracy, forKey: .adversarialAccuracy)
        try container.encodeIfPresent(images, forKey: .images)
    }
}
