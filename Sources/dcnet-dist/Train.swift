import ArgumentParser
import DCNetData
import DCNetLayers
import DCNetModels
import DCNetTraining
import Foundation

extension Architecture: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
extension ScalingKind: ExpressibleByArgument {}
extension RemainderKind: ExpressibleByArgument {}
extension Weighting: ExpressibleByArgument {}
extension GradientCompression: ExpressibleByArgument {}
extension LearningRateScaling: ExpressibleByArgument {}
extension ConvolutionAlgorithm: ExpressibleByArgument {}
extension PrecisionRequest: ExpressibleByArgument {}
extension Padding: ExpressibleByArgument {}
extension Downsampling: ExpressibleByArgument {}

/// How convolutions compute (not part of the model: a checkpoint loads under either algorithm).
struct EngineOptions: ParsableArguments {
    @Option(help: "3×3 stride-1 convolutions: winograd (F(4×4,3×3): 4× fewer multiply-adds) or gemm (im2col + GEMM).")
    var convolutionAlgorithm: ConvolutionAlgorithm = .standard
    @Option(
        help: ArgumentHelp(
            "GEMMs of convolutions and linear layers: fp32, bf16 (bf16 operands, fp32 accumulation; needs AVX512-BF16 "
                + "or AMX and oneDNN: apt-get install libdnnl-dev) or auto (bf16 where every rank can).",
            valueName: "fp32|bf16|auto"))
    var precision: PrecisionRequest = .fp32
}

enum OperatorName: String, CaseIterable, ExpressibleByArgument {
    case baseline, sphere, ball, tanh, linear, seg, log
}
enum AngularName: String, CaseIterable, ExpressibleByArgument {
    case cos, linear, sigmoid, sqcos
    var activation: AngularActivation {
        switch self {
        case .cos: return .cosine
        case .linear: return .linear
        case .sigmoid: return .sigmoid
        case .sqcos: return .squareCosine
        }
    }
}
enum DatasetName: String, CaseIterable, ExpressibleByArgument { case cifar10, cifar100 }

/// Network options shared by `train` (and by later subcommands that build networks).
struct ModelOptions: ParsableArguments {
    @Option(help: "Network: cnn9 (nine 3×3 convolutions in three stages) or resnet32.")
    var model: Architecture = .cnn9
    @Option(help: "Width multiplier of the stage widths (cnn9: 64/128/256, resnet32: 96/192/384).")
    var width: Double = 1
    @Option(
        help: ArgumentHelp(
            "Convolution operator: baseline (inner product) or the decoupled magnitude function "
                + "sphere|ball|tanh|linear|seg|log.")
    )
    var `operator`: OperatorName = .tanh
    @Option(help: "Angular activation g(theta) of decoupled operators: cos|linear|sigmoid|sqcos.")
    var angular: AngularName = .cos
    @Option(
        help: "Weighted operator: none|linear (needs --operator linear)|nonlinear|separable (need --operator tanh).")
    var weighted: Weighting = .none
    @Flag(
        help: ArgumentHelp(
            "Learnable operator radius rho_c = (r_c²+1e-4)·m (the authors' form). Without it rho = m, the mean patch "
                + "norm.")
    )
    var learnableRadius = false
    @Option(help: "A fixed operator radius rho instead (not with --learnable-radius).")
    var radius: Float?
    @Option(help: "Decay of the running mean patch norm used at evaluation (the authors used 0.999).")
    var radiusDecay: Float = 0.9
    @Option(help: "Output scale alpha of decoupled operators.")
    var alpha: Float = 1
    @Option(help: "SegConv slope beta above the radius.")
    var beta: Float = 0.5
    @Option(
        help: ArgumentHelp(
            "Sigmoid angular activation sharpness k (default 0.3); with --learnable-sharpness the start of k, "
                + "at least 0.05 (default 0.75, the authors' k_raw = 0.7).")
    )
    var sharpness: Float?
    @Flag(help: "Learn k per output channel as |k_raw| + 0.05 (sigmoid activation only).")
    var learnableSharpness = false
    @Flag(help: "Leave out BatchNorm.")
    var noBatchnorm = false
    @Option(
        help: ArgumentHelp(
            "CNN-9's pooling after stages 1 and 2: max (the paper's) or average (linear, so that a network "
                + "--no-relu is non-linear only through its operators)."))
    var pooling: Downsampling = .max
    @Flag(help: "Leave out ReLU (the decoupled operators are themselves non-linear).")
    var noRelu = false
    @Option(help: "Label smoothing of the cross-entropy.")
    var labelSmoothing: Float = 0

    /// Rules about flags the model configuration does not hold: the multiplier (it stores the widths)
    /// and the radius flags, which it stores as one radius mode of a decoupled operator.
    private func flagProblems() -> [String] {
        var p: [String] = []
        if !(width > 0) { p.append("--width must be positive (got \(width))") }
        if radius != nil && learnableRadius { p.append("--radius and --learnable-radius exclude each other") }
        if `operator` == .baseline {
            if weighted != .none { p.append("--weighted needs a decoupled --operator, not baseline") }
            if learnableRadius || radius != nil { p.append("the baseline convolution has no operator radius") }
        }
        return p
    }

    /// What is wrong with these flags. The configuration's rules apply; values it leaves out (--beta of
    /// an operator other than seg, the operator flags of the baseline, --radius-decay with a fixed
    /// radius) are checked by the same rules on an operator that uses them all, so a bad value is
    /// refused whether or not it takes effect.
    func problems() -> [String] {
        let flags = flagProblems()
        guard flags.isEmpty else { return flags }
        let unused = DecoupledOperator(
            magnitude: .segmented(beta: beta), angular: .cosine, alpha: alpha,
            radius: .relative(decay: radiusDecay), sharpness: sharpness ?? DecoupledOperator.defaultSharpness)
        return modelConfig(classes: 10).problems() + unused.problems()
    }

    var decoupledOperator: DecoupledOperator {
        let magnitude: MagnitudeFunction
        switch `operator` {
        case .baseline, .tanh: magnitude = .tanh
        case .sphere: magnitude = .sphere
        case .ball: magnitude = .ball
        case .linear: magnitude = .linear
        case .seg: magnitude = .segmented(beta: beta)
        case .log: magnitude = .logarithmic
        }
        let radiusMode: RadiusMode =
            radius.map { .fixed($0) }
            ?? (learnableRadius ? .learnable(decay: radiusDecay) : .relative(decay: radiusDecay))
        return DecoupledOperator(
            magnitude: magnitude, angular: angular.activation, weighting: weighted,
            alpha: alpha, radius: radiusMode, sharpness: sharpness,
            learnableSharpness: learnableSharpness)
    }

    func modelConfig(classes: Int) -> ModelConfig {
        ModelConfig(
            architecture: model, widthMultiplier: width,
            convolution: `operator` == .baseline ? .baseline : .decoupled(decoupledOperator),
            batchNorm: !noBatchnorm, relu: !noRelu, classes: classes, labelSmoothing: labelSmoothing,
            downsampling: pooling)
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network (run under mpirun for several ranks).",
        discussion: """
            A decoupled network trains the way the DCNet authors trained theirs only with their whole recipe: \
            `--config recipes/authors-cifar.toml` (Adam 1e-3, step schedule at 47/71/88% of the steps, label \
            smoothing, orthogonality, mirror padding). Weight projection of decoupled filters every 100 steps is \
            on by default in any recipe.
            """)
    /// The types whose long flag names a configuration file may use as keys.
    static let flagTypes: [ParsableArguments.Type] = [Train.self, ModelOptions.self, EngineOptions.self]

    @Option(
        help: ArgumentHelp(
            "A recipe: a TOML (.toml) or YAML (.yaml, .yml) file whose keys are these long flag names "
                + "(lr = 0.001, no-batchnorm = true, step-milestones = [\"47%\", \"71%\"]). Flags on the command "
                + "line override it.", valueName: "file"))
    var config: String?

    @Option(
        help: ArgumentHelp(
            "Directory with the CIFAR binary files (data_batch_1..5.bin[.gz] and test_batch.bin[.gz], or "
                + "train.bin/test.bin for CIFAR-100).")
    )
    var data: String
    @Option(help: "cifar10 or cifar100.")
    var dataset: DatasetName = .cifar10
    @OptionGroup var network: ModelOptions
    @OptionGroup var engine: EngineOptions

    @Option(help: "Epochs to train.") var epochs: Int = 10
    @Option(help: "Global batch size over all ranks (must divide by the rank count).") var batchSize: Int = 128
    @Option(
        help: ArgumentHelp(
            "Micro-batches per rank per step: gradients of K forward/backward passes are summed before the step's "
                + "one all-reduce (global batch = ranks × K × images per pass).")
    )
    var accumulate: Int = 1
    @Option(help: "Scale the peak --lr with the global batch: none, linear (× batch/reference; use a warm-up) or sqrt.")
    var lrScaling: LearningRateScaling = .none
    @Option(help: "The batch size --lr was chosen for (with --lr-scaling).") var referenceBatch: Int = 128
    @Option(help: "sgd or adam.") var optimizer: OptimizerKind = .sgd
    @Option(help: "Peak learning rate.") var lr: Float = 0.05
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Flag(help: "Plain momentum instead of Nesterov.") var noNesterov = false
    @Option(help: "Learning-rate schedule after the warm-up: cosine|step|constant.") var schedule: ScheduleKind =
        .cosine
    @Option(help: "Epochs of linear warm-up.") var warmupEpochs: Double = 1
    @Option(
        help: ArgumentHelp(
            "Where the step schedule multiplies the rate by --step-gamma, comma-separated: epochs (10,20) or "
                + "percentages of all steps (47%,71%,88%: the authors' 20k/30k/37.5k of 42.5k iterations at any "
                + "epoch count)."))
    var stepMilestones: String = ""
    @Option(help: "Factor of the step schedule.") var stepGamma: Float = 0.1
    @Option(help: "Weight decay (not applied to decoupled filters and radii unless --decay-decoupled).")
    var weightDecay: Float = 5e-4
    @Flag(help: "Also apply weight decay to decoupled filters.") var decayDecoupled = false
    @Option(help: "Clip the global gradient norm to this value.") var clipNorm: Float?
    @Option(
        help: ArgumentHelp(
            "Renormalise decoupled filters to unit norm every N steps (default: \(Train.defaultProjectEvery), as in "
                + "the authors' code; 0: never). The operators see only w/||w||, so the forward pass is unchanged "
                + "and the effective step size does not shrink as ||w|| grows. The baseline has no decoupled "
                + "filters: nothing is projected."))
    var projectEvery: Int?
    static let defaultProjectEvery = 100
    @Option(help: "lambda of the orthogonality regulariser on decoupled filters (the authors used 1e-5; 0: off).")
    var orthogonality: Float = 0
    @Flag(
        help: ArgumentHelp(
            "Multiply the gradient of each decoupled filter by its norm ||w|| before the update, making the update "
                + "independent of the filter's scale (the operators see w/||w||, whose gradient carries 1/||w||). "
                + "This is our reading of the paper's description of weighted gradients.")
    )
    var weightedGradients = false
    @Option(help: "Input scaling: authors ((x−127.5)/128) or meanstd.") var scaling: ScalingKind = .authors
    @Flag(help: "No pad-4 random crop and horizontal flip.") var noAugment = false
    @Option(
        help: ArgumentHelp(
            "Border of the pad-4 random crop: zero, or mirror (the image reflected at its edge, TensorFlow's "
                + "SYMMETRIC mode, as in the authors' code)."))
    var padding: Padding = .zero
    @Option(help: "Last partial global batch of an epoch: wrap (filled from the start of the order) or drop.")
    var remainder: RemainderKind = .wrap
    @Option(help: "Seed of initialisation, data order and augmentation.") var seed: UInt64 = 0
    @Option(
        help: "Training images held out for validation after each epoch (the same ones for any seed or rank count).")
    var validation: Int = 0
    @Option(help: "Stop after this many steps in total (benchmarks and smoke runs).") var maxSteps: Int?

    @Option(help: "Directory for checkpoints (rank 0 writes).") var checkpointDir: String?
    @Option(help: "Write a checkpoint every N steps (0: only at the end).") var checkpointEvery: Int = 0
    @Option(help: "Keep the newest K checkpoints.") var keep: Int = 3
    @Flag(help: "Continue from the newest valid checkpoint in --checkpoint-dir (starts fresh if there is none).")
    var resume = false
    @Option(help: "Append JSON-lines metrics to this file (rank 0).") var metrics: String?
    @Option(
        help: ArgumentHelp(
            "Write TensorBoard event files to this directory (rank 0; one run per job): losses, accuracies, "
                + "learning rate, images/s, the exposed-communication share, the slowest rank's excess, and per "
                + "decoupled layer the mean operator radius and patch norm. With --resume the run continues in the "
                + "same directory without repeating steps.", valueName: "directory"))
    var tensorboard: String?
    @Option(
        help: ArgumentHelp(
            "Write a Chrome trace (Trace Event JSON: Perfetto, chrome://tracing) of every rank over --timeline-steps: "
                + "data, forward and backward per layer, each gradient bucket's all-reduce, waits, the update, "
                + "evaluation and checkpoints, rank clocks aligned to rank 0. Rank 0 writes the one file.",
            valueName: "file"))
    var timeline: String?
    @Option(help: "Global steps A:B (from 1) the timeline records.") var timelineSteps: String = "1:20"
    @Option(
        help: ArgumentHelp(
            "Gradient all-reduce bucket size in MiB (small buckets let the last one, which waits for the whole "
                + "backward, finish quickly on slow links).")
    )
    var bucketMb: Double = RunOptions.defaultBucketMegabytes
    @Option(
        help: "none, or bf16: all-reduce gradients as bfloat16 (half the bytes; 8 significant bits, for slow networks)."
    )
    var gradientCompression: GradientCompression = .none
    @Flag(
        help: ArgumentHelp(
            "Synchronised BatchNorm (and mean patch norm) over all ranks: the same math as one process with the "
                + "global batch.")
    )
    var syncBatchnorm = false
    @Option(help: "OpenBLAS threads per rank (default: cores on the node / ranks on the node).") var threads: Int?
    @Option(help: "Evaluate every N epochs (0: only at the end).") var evalEvery: Int = 1
    @Option(help: "Evaluate on the first N test images only.") var evalLimit: Int?
    @Option(help: "Print a progress line every N steps.") var logEvery: Int = 50
    @Option(
        help: ArgumentHelp(
            "Seconds a rank may wait at one collective (a gradient bucket, the step agreement, synchronised "
                + "BatchNorm, evaluation, a checkpoint, the initial broadcast) before the job ends, naming the ranks "
                + "and hosts that did not arrive (0: wait forever, warning every 60 s).",
            valueName: "seconds"))
    var collectiveTimeout: Double = RunOptions.defaultCollectiveTimeout
    @Flag(
        help: ArgumentHelp(
            "Check the flags against each other and exit (0: no problem; otherwise every problem is listed), "
                + "without reading --data or starting a job. scripts/experiments checks every run of a suite "
                + "this way before the first one starts."))
    var checkFlags = false

    func validate() throws {
        // One key of a configuration file on its own: the rules between flags wait for the merged flags.
        if ConfigFile.checkingOneKey { return }
        var problems = network.problems()
        var config = try trainingConfig()
        // Checked even without --lr-scaling, where the configuration leaves it out.
        config.referenceBatch = referenceBatch
        problems += config.problems() + runOptions().problems()
        if case .failure(let e) = Timeline.parseSteps(timelineSteps) { problems.append(e.description) }
        if !checkFlags && !FileManager.default.fileExists(atPath: data) {
            problems.append("--data \(data): no such directory")
        }
        var seen = Set<String>()
        problems = problems.filter { seen.insert($0).inserted }
        if let file = ConfigFile.current {
            problems = problems.map { file.annotate($0, commandLine: CommandLine.arguments) }
        }
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
    }

    /// `--step-milestones` as epochs, or as fractions of all steps when every entry ends in `%`.
    func milestones() throws -> (epochs: [Int], fractions: [Double]?) {
        let entries = stepMilestones.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if entries.contains(where: { $0.hasSuffix("%") }) {
            let fractions = try entries.map { entry -> Double in
                guard entry.hasSuffix("%"), let v = Double(entry.dropLast()), v.isFinite else {
                    throw ValidationError(
                        "--step-milestones: '\(entry)' is not a percentage (write every entry as epochs or every "
                            + "entry as a percentage such as 47%)")
                }
                return v / 100
            }
            return ([], fractions)
        }
        let epochs = try entries.map {
            guard let v = Int($0), v > 0 else {
                throw ValidationError("--step-milestones: '\($0)' is not a positive epoch number or a percentage")
            }
            return v
        }
        return (epochs, nil)
    }

    func trainingConfig() throws -> TrainingConfig {
        var config = TrainingConfig(model: network.modelConfig(classes: dataset == .cifar10 ? 10 : 100))
        config.dataset = dataset.rawValue
        config.epochs = epochs; config.globalBatch = batchSize
        config.optimizer = optimizer; config.learningRate = lr; config.momentum = momentum
        config.nesterov = !noNesterov; config.schedule = schedule; config.warmupEpochs = warmupEpochs
        let milestones = try milestones()
        config.stepMilestones = milestones.epochs; config.stepMilestoneFractions = milestones.fractions
        config.stepGamma = stepGamma
        config.weightDecay = weightDecay; config.decayDecoupledFilters = decayDecoupled
        // Projection and the orthogonality term act on decoupled filters only: a baseline stores 0 for
        // both, so its records say what was applied.
        let decoupled = network.operator != .baseline
        config.gradientClipNorm = clipNorm
        config.projectEvery = decoupled ? projectEvery ?? Train.defaultProjectEvery : 0
        config.orthogonality = decoupled ? orthogonality : 0
        config.scaling = scaling; config.augment = !noAugment; config.remainder = remainder
        config.padding = padding == .zero ? nil : padding
        config.seed = seed; config.syncBatchNorm = syncBatchnorm
        config.accumulation = accumulate == 1 ? nil : accumulate
        config.learningRateScaling = lrScaling == .none ? nil : lrScaling
        config.referenceBatch = lrScaling == .none ? nil : referenceBatch
        config.validation = validation == 0 ? nil : validation
        config.weightedGradients = weightedGradients ? true : nil
        return config
    }

    func runOptions() -> RunOptions {
        var options = RunOptions(dataDirectory: data)
        options.checkpointDirectory = checkpointDir; options.checkpointEvery = checkpointEvery
        options.keep = keep; options.resume = resume; options.metricsPath = metrics
        options.tensorboardDirectory = tensorboard
        options.timelinePath = timeline
        if case .success(let range) = Timeline.parseSteps(timelineSteps) { options.timelineSteps = range }
        options.maxSteps = maxSteps; options.threads = threads; options.bucketMegabytes = bucketMb
        options.gradientCompression = gradientCompression
        options.evalEvery = evalEvery; options.evalLimit = evalLimit; options.logEvery = logEvery
        options.collectiveTimeout = collectiveTimeout
        options.convolutionAlgorithm = engine.convolutionAlgorithm
        options.precision = engine.precision
        options.commandLine = CommandLine.arguments.joined(separator: " ")
        return options
    }

    func run() throws {
        if checkFlags { return }
        let config = try trainingConfig(), options = runOptions()
        // Before MPI_Init and data loading: until then SIGTERM, SIGUSR1 and SIGINT would kill the
        // rank (their default action) instead of ending the run cleanly.
        PreemptionSignal.install()
        runJob { _ in
            let trainer = try Trainer(config: config, options: options)
            _ = try trainer.run()
            return 0
        }
    }
}
