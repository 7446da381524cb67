import DCNetData
import DCNetLayers
import DCNetModels

public enum OptimizerKind: String, Codable, Sendable, CaseIterable { case sgd, adam }
public enum ScheduleKind: String, Codable, Sendable, CaseIterable {
    /// Cosine decay to 0 at the end of training (after the warm-up).
    case cosine
    /// Multiply by `stepGamma` at each epoch in `stepMilestones` (or each fraction of the steps in
    /// `stepMilestoneFractions`).
    case step
    /// Peak learning rate throughout (after the warm-up).
    case constant
}
public enum ScalingKind: String, Codable, Sendable, CaseIterable {
    /// (x − 127.5)/128, the authors' code.
    case authors
    /// Per-channel CIFAR-10 mean and standard deviation.
    case meanstd
    public var scaling: Scaling { self == .authors ? .authors : .cifar10MeanStd }
}
/// How the peak learning rate follows the global batch (`--lr-scaling`, against `--reference-batch`).
public enum LearningRateScaling: String, Codable, Sendable, CaseIterable {
    /// `--lr` as given.
    case none
    /// `--lr` × global batch / reference batch (Goyal et al. 2017; pair it with a warm-up).
    case linear
    /// `--lr` × sqrt(global batch / reference batch) (the gentler rule often used with Adam).
    case sqrt
}

public enum RemainderKind: String, Codable, Sendable, CaseIterable {
    /// The last partial global batch of an epoch is filled by wrapping around the permutation
    /// (every image is seen at least once per epoch; a few twice).
    case wrap
    /// The last partial global batch is dropped.
    case drop
    public var policy: RemainderPolicy { self == .wrap ? .wrap : .dropLast }
}

/// Everything that determines the optimisation trajectory. It is stored in every checkpoint; on
/// resume the stored configuration is used, so a resumed run continues exactly.
public struct TrainingConfig: Codable, Sendable, Equatable {
    public var dataset: String = CIFARVariant.cifar10.rawValue
    public var model: ModelConfig
    public var epochs: Int = 10
    /// Global batch over all ranks; each rank takes globalBatch / ranks.
    public var globalBatch: Int = 128
    public var optimizer: OptimizerKind = .sgd
    public var learningRate: Float = 0.05
    public var momentum: Float = 0.9
    public var nesterov: Bool = true
    public var adamBetas: [Float] = [0.9, 0.999]
    public var adamEpsilon: Float = 1e-8
    public var schedule: ScheduleKind = .cosine
    public var warmupEpochs: Double = 1
    public var stepMilestones: [Int] = []
    /// The step schedule's milestones as fractions of all training steps (`--step-milestones 47%,71%,88%`),
    /// so a schedule scales to any epoch count; replaces `stepMilestones` when set. Optional so
    /// checkpoints written before it existed still decode.
    public var stepMilestoneFractions: [Double]? = nil
    public var stepGamma: Float = 0.1
    public var weightDecay: Float = 5e-4
    /// The authors apply no weight decay to decoupled filters and operator radii.
    public var decayDecoupledFilters: Bool = false
    public var seed: UInt64 = 0
    public var augment: Bool = true
    /// The border of the pad-4 random crop (nil: zero, what checkpoints written before it existed used).
    public var padding: Padding? = nil
    public var scaling: ScalingKind = .authors
    public var remainder: RemainderKind = .wrap
    public var gradientClipNorm: Float? = nil
    /// Renormalise decoupled filters to unit norm every N steps (0: never).
    public var projectEvery: Int = 0
    /// lambda of the orthogonality regulariser lambda/2·||Ŵ Ŵᵀ − I||² per decoupled layer (0: off).
    public var orthogonality: Float = 0
    /// Normalise BatchNorm (and the decoupled layers' mean patch norm) over the global batch.
    public var syncBatchNorm: Bool = false
    /// Micro-batches per rank per step (`--accumulate`): gradients of K micro-batches are summed
    /// before the one all-reduce of the step. Optional so checkpoints written before it existed
    /// still decode (nil: 1).
    public var accumulation: Int? = nil
    /// `--lr-scaling` and `--reference-batch` (nil: none, 128).
    public var learningRateScaling: LearningRateScaling? = nil
    public var referenceBatch: Int? = nil
    /// Training images held out for validation (`--validation`; nil: none). Part of the
    /// configuration because it changes what the model trains on.
    public var validation: Int? = nil
    /// `--weighted-gradients`: the gradient of each decoupled filter is multiplied by the filter's norm
    /// before the update (nil: off). Optional so checkpoints written before it existed still decode.
    public var weightedGradients: Bool? = nil

    /// Micro-batches per rank per step.
    public var microBatches: Int { accumulation ?? 1 }

    /// The peak learning rate the schedule uses: `learningRate` scaled by the global batch over the
    /// reference batch as `learningRateScaling` says.
    public var peakLearningRate: Float {
        let ratio = Double(globalBatch) / Double(referenceBatch ?? 128)
        switch learningRateScaling ?? .none {
        case .none: return learningRate
        case .linear: return learningRate * Float(ratio)
        case .sqrt: return learningRate * Float(ratio.squareRoot())
        }
    }

    public init(model: ModelConfig) { self.model = model }

    public var variant: CIFARVariant { CIFARVariant(rawValue: dataset) ?? .cifar10 }

    /// Reasons this configuration cannot run with `ranks` ranks, each naming the flag and the value.
    public func problems(ranks: Int) -> [String] {
        var p = problems()
        if globalBatch > 0 && microBatches > 0 && globalBatch % (ranks * microBatches) != 0 {
            p.append(
                "--batch-size \(globalBatch) is the global batch and must divide by "
                    + (microBatches == 1
                        ? "the \(ranks) ranks" : "\(ranks) ranks × --accumulate \(microBatches) micro-batches"))
        }
        return p
    }

    /// Reasons this configuration cannot run on any number of ranks (the command line checks them
    /// before MPI starts), each naming the flag and the value.
    public func problems() -> [String] {
        var p: [String] = []
        if epochs <= 0 { p.append("--epochs must be positive (got \(epochs))") }
        if microBatches <= 0 { p.append("--accumulate must be positive (got \(microBatches))") }
        if let r = referenceBatch, r <= 0 { p.append("--reference-batch must be positive (got \(r))") }
        if globalBatch <= 0 { p.append("--batch-size must be positive (got \(globalBatch))") }
        if stepMilestones.contains(where: { $0 <= 0 }) {
            p.append("--step-milestones must be positive epoch numbers (got \(stepMilestones))")
        }
        if let fractions = stepMilestoneFractions {
            if !fractions.allSatisfy({ $0 > 0 && $0 < 1 }) {
                p.append(
                    "--step-milestones percentages must lie strictly between 0% and 100% (got "
                        + fractions.map { "\($0 * 100)%" }.joined(separator: ",") + ")")
            }
            if !stepMilestones.isEmpty {
                p.append("--step-milestones: epochs and percentages cannot be mixed")
            }
        }
        if !(learningRate > 0) { p.append("--lr must be positive (got \(learningRate))") }
        if weightDecay < 0 { p.append("--weight-decay must be ≥ 0 (got \(weightDecay))") }
        if !(0...1).contains(momentum) { p.append("--momentum must be in [0, 1] (got \(momentum))") }
        if warmupEpochs < 0 { p.append("--warmup-epochs must be ≥ 0 (got \(warmupEpochs))") }
        if let c = gradientClipNorm, !(c > 0) { p.append("--clip-norm must be positive (got \(c))") }
        if projectEvery < 0 { p.append("--project-every must be ≥ 0 (got \(projectEvery))") }
        if orthogonality < 0 { p.append("--orthogonality must be ≥ 0 (got \(orthogonality))") }
        if let known = CIFARVariant(rawValue: dataset) {
            if model.classes != known.classCount {
                p.append("classes \(model.classes) does not match --dataset \(dataset) (\(known.classCount) classes)")
            }
        } else {
            p.append(
                "--dataset must be one of \(CIFARVariant.allCases.map(\.rawValue).joined(separator: ", ")) "
                    + "(got \(dataset))"
            )
        }
        if epochs > 1_000_000 { p.append("--epochs must be at most 1000000 (got \(epochs))") }
        if globalBatch > 1 << 20 { p.append("--batch-size must be at most \(1 << 20) (got \(globalBatch))") }
        if microBatches > max(globalBatch, 1) {
            p.append("--accumulate \(microBatches) is more micro-batches than the \(globalBatch) images of a step")
        }
        if adamBetas.count != 2 || !adamBetas.allSatisfy({ (0..<1).contains($0) }) {
            p.append("adamBetas must be two numbers in [0, 1) (got \(adamBetas))")
        }
        if let v = validation, v < 0 { p.append("--validation must be ≥ 0 (got \(v))") }
        if weightedGradients == true, case .baseline = model.convolution {
            p.append("--weighted-gradients needs a decoupled --operator, not baseline (it has no decoupled filters)")
        }
        if !(adamEpsilon > 0) { p.append("adamEpsilon must be positive (got \(adamEpsilon))") }
        if !(stepGamma > 0) { p.append("--step-gamma must be positive (got \(stepGamma))") }
        if !warmupEpochs.isFinite { p.append("--warmup-epochs must be finite (got \(warmupEpochs))") }
        return p + model.problems()
    }
}

/// Where the run writes and how it talks to MPI; none of it changes the optimisation trajectory.
public struct RunOptions: Sendable {
    public var dataDirectory: String
    public var checkpointDirectory: String? = nil
    public var checkpointEvery: Int = 0
    public var keep: Int = 3
    public var resume: Bool = false
    public var metricsPath: String? = nil
    /// `--tensorboard DIR`: rank 0 writes the metrics as TensorBoard scalars there too.
    public var tensorboardDirectory: String? = nil
    /// `--timeline FILE --timeline-steps A:B`: a trace of every rank over those global steps.
    public var timelinePath: String? = nil
    public var timelineSteps: ClosedRange<Int> = 1...20
    public var maxSteps: Int? = nil
    public var threads: Int? = nil
    public var bucketMegabytes: Double = RunOptions.defaultBucketMegabytes
    /// Buckets close at the first layer boundary past this size, so the last bucket (the first
    /// layers, ready only when backward ends) holds what is left and is never overlapped. At 4 MiB
    /// that tail was ~4.5 MB of CNN-9's 9 MB of gradients, and a 1 Gbit/s link lost 10% of the
    /// throughput to it; at 1 MiB the loss was 2-5%, with no measurable change on shared memory.
    public static let defaultBucketMegabytes: Double = 1
    public var gradientCompression: GradientCompression = .none
    public var evalEvery: Int = 1
    public var logEvery: Int = 50
    /// Images of the test set to evaluate (nil: all).
    public var evalLimit: Int? = nil
    public var commandLine: String = ""
    /// Seconds any rank may wait at one collective before the job is ended, naming the ranks that
    /// did not arrive (0: no deadline, but a stall warning every 60 s). 300 s is far above any
    /// CPU step or checkpoint write yet ends a job with a lost host in minutes, not at its time limit.
    public var collectiveTimeout: Double = RunOptions.defaultCollectiveTimeout
    public static let defaultCollectiveTimeout: Double = 300
    /// Why `seconds` cannot be a `--collective-timeout` (nil: it can). Every command with a watchdog
    /// (train, eval, attack, features) checks its flag here.
    public static func collectiveTimeoutProblem(_ seconds: Double) -> String? {
        seconds >= 0 && seconds.isFinite ? nil : "--collective-timeout must be a number of seconds ≥ 0 (got \(seconds))"
    }
    /// How the convolutions compute; not part of the configuration, so a run may resume under the other one.
    public var convolutionAlgorithm: ConvolutionAlgorithm = .standard
    /// The arithmetic of the convolution and linear GEMMs (`--precision`); not part of the
    /// configuration either: checkpoints are fp32, and a run may resume under another precision.
    public var precision: PrecisionRequest = .fp32
    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }

    public func problems() -> [String] {
        var p: [String] = []
        if checkpointEvery < 0 { p.append("--checkpoint-every must be ≥ 0 (got \(checkpointEvery))") }
        if keep <= 0 { p.append("--keep must be positive (got \(keep))") }
        if let m = maxSteps, m <= 0 { p.append("--max-steps must be positive (got \(m))") }
        if let t = threads, t <= 0 { p.append("--threads must be positive (got \(t))") }
        if !(bucketMegabytes > 0) { p.append("--bucket-mb must be positive (got \(bucketMegabytes))") }
        if evalEvery < 0 { p.append("--eval-every must be ≥ 0 (got \(evalEvery))") }
        if let e = evalLimit, e <= 0 { p.append("--eval-limit must be positive (got \(e))") }
        if logEvery <= 0 { p.append("--log-every must be positive (got \(logEvery))") }
        if let problem = Self.collectiveTimeoutProblem(collectiveTimeout) { p.append(problem) }
        if resume && checkpointDirectory == nil { p.append("--resume needs --checkpoint-dir") }
        return p
    }
}
