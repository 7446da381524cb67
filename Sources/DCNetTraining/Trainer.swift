import BLAS
import DCNetData
import DCNetFormats
import DCNetLayers
import DCNetModels
import DCNetTensor
import Foundation
import MPI

/// Data-parallel training: every rank holds a replica, trains on its interleaved shard of each
/// global batch, and averages gradients with bucketed all-reduces overlapped with backward.
/// With one rank it is plain single-process training.
public final class Trainer {
    public enum Outcome: Sendable { case completed, preempted, stoppedAtMaxSteps }

    public struct Timing: Sendable {
        public var forward = 0.0, backward = 0.0, exposedCommunication = 0.0, update = 0.0, data = 0.0
        public var steps = 0
        /// The exposed-communication wait of each step (filled by `runSteps`, for benchmarks that
        /// compare ranks step by step).
        public var exposedPerStep: [Double] = []
        public var total: Double { forward + backward + exposedCommunication + update + data }
    }

    public let communicator: Communicator
    public let console: Console
    public private(set) var config: TrainingConfig
    public let options: RunOptions
    public let network: Network
    public let optimizer: Optimizer
    let exchange: GradientExchange
    let trainSet: LabeledImages
    let testSet: LabeledImages
    /// Training images held out by `--validation` (empty without it).
    let validationSet: LabeledImages
    /// Images per rank per forward pass: the global batch over ranks × micro-batches.
    let localBatch: Int
    /// Summed gradients of a step's earlier micro-batches (`--accumulate` > 1 only).
    let accumulator: UnsafeMutablePointer<Float>?
    let images: Tensor
    let labels: UnsafeMutablePointer<Int32>
    /// Packed running statistics for averaging them over ranks (without synchronised statistics).
    let statePacked: UnsafeMutablePointer<Float>
    let stateCount: Int
    let schedule: LearningRateSchedule
    public let stepsPerEpoch: Int
    public internal(set) var progress = TrainingProgress()
    public internal(set) var timing = Timing()
    /// Loss of every step taken by this process (global mean over ranks), for tests and benchmarks.
    public private(set) var stepLosses: [Float] = []
    /// The GEMM precision all ranks agreed on (`--precision` resolved).
    public let precision: Precision
    var report: TrainingReport!
    /// Seconds this rank computed (its step time minus time blocked on other ranks) since the
    /// last progress line: the straggler report compares it across ranks.
    var busySeconds = 0.0
    var stats: [Double] = [0, 0, 0]
    /// Step of the newest checkpoint written or resumed from: a stop without a step since then
    /// writes none.
    var checkpointedStep: Int?
    /// `--timeline`: every rank's events over a range of steps (nil: nothing is recorded).
    let timeline: Timeline?

    /// Loads data, builds the replica, initialises or resumes on rank 0 and broadcasts; every step
    /// that can fail on one rank is agreed on by all before the next collective.
    public init(config requested: TrainingConfig, options: RunOptions, communicator caller: Communicator = .world)
        throws
    {
        // A communicator of its own: the trainer's collectives, and the watchdog that numbers them,
        // never interleave with the caller's.
        let communicator = try caller.duplicate()
        self.communicator = communicator
        self.options = options
        console = Console(rank: communicator.rank)
        let fault = try Self.checkLaunch(requested, options: options, communicator: communicator, console: console)
        BLAS.threadCount = threadsPerRank(requested: options.threads, communicator: communicator)
        // Before the data loads: a bf16 run that cannot run stops at once, on every rank.
        precision = try options.precision.resolve(
            communicator: communicator, console: console, threads: BLAS.threadCount)
        let plan = try ResumePlan.negotiate(
            requested: requested, options: options, communicator: communicator, console: console)
        let config = plan.config
        self.config = config
        if let checkpoint = plan.checkpoint,
            case let stored = checkpoint.file.metadata[Checkpoint.precisionKey] ?? Precision.fp32.rawValue,
            stored != precision.rawValue
        {
            console.print(
                "dcnet-dist: resuming a checkpoint trained with \(stored) GEMMs in \(precision) "
                    + "(checkpoints are fp32 either way)")
        }
        (trainSet, validationSet, testSet) = try Self.loadData(
            config, options: options, communicator: communicator, console: console)
        localBatch = config.globalBatch / (communicator.size * config.microBatches)
        network = config.model.makeNetwork(
            batch: localBatch, algorithm: options.convolutionAlgorithm, precision: precision)
        optimizer = Optimizer(config: config, network: network)
        exchange = GradientExchange(
            communicator: communicator, gradients: network.gradients, owner: network.arena,
            layerRanges: network.layerParameterRanges,
            bucketBytes: Int(options.bucketMegabytes * 1_048_576), compression: options.gradientCompression)
        images = network.arena.tensor(network.inputShape)
        labels = .allocate(capacity: localBatch)
        accumulator = config.microBatches > 1 ? network.arena.floats(network.parameterCount) : nil
        stateCount = network.state.reduce(0) { $0 + $1.count }
        statePacked = network.arena.floats(max(stateCount, 1))
        stepsPerEpoch = DataOrder.stepsPerEpoch(
            count: trainSet.count, globalBatch: config.globalBatch, policy: config.remainder.policy)
        let (batch, available, steps) = (config.globalBatch, trainSet.count, stepsPerEpoch)
        try communicator.agree("checking the batch against the training images") {
            guard steps > 0 else {
                throw LocalFailure("--batch-size \(batch) is larger than the \(available) training images")
            }
        }
        schedule = LearningRateSchedule(config: config, stepsPerEpoch: stepsPerEpoch)
        timeline = try options.timelinePath.map {
            try Timeline(path: $0, steps: options.timelineSteps, communicator: communicator)
        }
        try startReplicas(from: plan.checkpoint)
        report = try TrainingReport(
            console: console, metricsPath: options.metricsPath, tensorboardDirectory: options.tensorboardDirectory,
            resuming: options.resume, communicator: communicator)
        if let fault { inject(fault) }
        if let timeline {
            let exchange = exchange
            exchange.observeBucket = { bucket, completed in
                let now = MPIRuntime.wallTime()
                if completed {
                    let layers = exchange.layers(ofBucket: bucket)
                    timeline.span(
                        "all-reduce bucket \(bucket)", category: "communication",
                        from: timeline.bucketStarts[bucket] ?? now, to: now, track: .allReduce,
                        args: ["bucket": bucket, "first_layer": layers.lowerBound, "last_layer": layers.upperBound])
                } else {
                    timeline.bucketStarts[bucket] = now
                }
            }
        }
    }

    /// Checks that need the communicator: the configuration against the rank count, and the launch
    /// against Slurm's task count. Returns the fault `DCNET_FAULT` injects on this rank, if any.
    private static func checkLaunch(
        _ config: TrainingConfig, options: RunOptions, communicator: Communicator, console: Console
    ) throws -> InjectedFault? {
        let size = communicator.size
        if size > 1 { try communicator.installWatchdog(.job(timeout: options.collectiveTimeout)) }
        // Agreed: ranks of an MPMD launch may be given different flags, and a rank that gave up alone
        // would leave the others waiting in the next collective until the watchdog's deadline.
        let problems = config.problems(ranks: size) + options.problems()
        try communicator.agree("checking the configuration") {
            if !problems.isEmpty { throw LocalFailure(problems.joined(separator: "\n")) }
        }
        // Each rank reads its own environment (under mpirun inside an allocation, ranks on other
        // nodes may see another SLURM_NTASKS), so the verdict is agreed: one rank alone must not
        // give up while the others wait in the next collective.
        try communicator.agree("checking the launch against Slurm") {
            if let tasks = ProcessInfo.processInfo.environment["SLURM_NTASKS"], let n = Int(tasks), n != size {
                throw LocalFailure(
                    "MPI world size \(size) differs from SLURM_NTASKS=\(n): launch with srun --mpi=pmix or "
                        + "mpirun inside the allocation (with -x SLURM_NTASKS)")
            }
        }
        // The CLI installs the handler before MPI_Init; installing again here covers a library that
        // replaced it since, and callers that did not install it, before the long data loading.
        PreemptionSignal.install()
        communicator.watchdog?.stopRequested = { PreemptionSignal.received != 0 }
        let fault = try communicator.agree("reading \(InjectedFault.variable)") {
            try InjectedFault.fromEnvironment()
        }
        return fault.flatMap { $0.rank == communicator.rank ? $0 : nil }
    }

    /// The training and test sets (the test set cut to --eval-limit), read by every rank.
    private static func loadData(
        _ config: TrainingConfig, options: RunOptions, communicator: Communicator, console: Console
    ) throws -> (train: LabeledImages, validation: LabeledImages, test: LabeledImages) {
        let variant = config.variant, dir = options.dataDirectory, held = config.validation ?? 0
        let (all, test) = try communicator.agree("loading \(variant.rawValue) from \(dir)") {
            (
                try CIFAR.load(directory: dir, variant: variant, split: .train),
                try CIFAR.load(directory: dir, variant: variant, split: .test)
            )
        }
        // Every rank read the same files, so every rank reaches the same verdict here.
        guard held < all.count else {
            throw JobError(
                rank: communicator.rank, "--validation \(held) leaves no training images (\(dir) has \(all.count))")
        }
        let limited = options.evalLimit.map { test.prefix(min($0, test.count)) } ?? test
        guard held > 0 else { return (all, all.prefix(0), limited) }
        let split = DataOrder.validationSplit(count: all.count, size: held)
        return (
            all.subset(indices: split.train), all.subset(indices: split.validation), limited
        )
    }

    /// Wires synchronised statistics, then rank 0 initialises the parameters or loads the
    /// checkpoint, and every rank receives the same state.
    private func startReplicas(from checkpoint: Checkpoint.Contents?) throws {
        if config.syncBatchNorm && communicator.size > 1 {
            let reducer = CommunicatorStatistics(communicator)
            for layer in network.allLayers {
                (layer as? BatchNorm2D)?.statisticsReducer = reducer
                (layer as? DecoupledConv2D)?.statisticsReducer = reducer
            }
        }
        let network = network, optimizer = optimizer, model = config.model, seed = config.seed
        let rank = communicator.rank
        let restored = try communicator.agree("loading checkpoint \(checkpoint?.path ?? "")") {
            () throws -> TrainingProgress? in
            guard rank == 0 else { return nil }
            if let c = checkpoint {
                try Checkpoint.apply(c, to: network, optimizer: optimizer, model: model)
                return c.progress
            }
            var rng = Xoshiro256StarStar(seed: seed)
            network.initializeParameters(using: &rng)
            return nil
        }
        if let restored {
            progress = restored
            checkpointedStep = restored.globalStep
        }
        try broadcastReplicaState()
        try verifyIdenticalReplicas()
        if let c = checkpoint {
            let size = communicator.size
            let note =
                c.progress.ranks == size
                ? ""
                : " (written with \(c.progress.ranks) ranks; same global batch \(config.globalBatch), "
                    + "now \(size) ranks × \(localBatch))"
            console.print("resumed from \(c.path) at epoch \(progress.epoch + 1), step \(progress.globalStep)\(note)")
        }
        progress.ranks = communicator.size
    }

    deinit { labels.deallocate() }

    /// `--timeline`: writes the trace once its last step is done (collective, like the steps).
    func writeTimelineIfDue(force: Bool = false) throws {
        guard let timeline, !timeline.written, force || progress.globalStep >= timeline.steps.upperBound else { return }
        try timeline.write(communicator, console: console)
    }

    /// Runs `count` training steps from the current position, without evaluation, checkpoints or
    /// progress lines, and returns their timing (for benchmarks).
    public func runSteps(_ count: Int) throws -> Timing {
        timing = Timing()
        timing.exposedPerStep.reserveCapacity(count)
        var permutation = DataOrder.permutation(count: trainSet.count, seed: config.seed, epoch: progress.epoch)
        for _ in 0..<count {
            if progress.stepInEpoch == stepsPerEpoch {
                progress.epoch += 1; progress.stepInEpoch = 0
                permutation = DataOrder.permutation(count: trainSet.count, seed: config.seed, epoch: progress.epoch)
            }
            let exposedBefore = timing.exposedCommunication
            let step = try trainStep(permutation: permutation)
            timing.exposedPerStep.append(timing.exposedCommunication - exposedBefore)
            stepLosses.append(Float(step.loss))
            progress.stepInEpoch += 1; progress.globalStep += 1
        }
        return timing
    }

    /// The loop: steps with progress lines, checkpoints and stop requests; epoch summaries with
    /// their evaluations.
    public func run() throws -> Outcome {
        // A signal during start-up (data loading, restoring a checkpoint) is acted on here rather
        // than at the first step, which may be far away.
        let signal = try agreedStopSignal()
        if signal != 0 { return try stop(by: signal) }
        try report.started(self)
        while progress.epoch < config.epochs {
            let permutation = DataOrder.permutation(count: trainSet.count, seed: config.seed, epoch: progress.epoch)
            while progress.stepInEpoch < stepsPerEpoch {
                if let m = options.maxSteps, progress.globalStep >= m {
                    try finish(reason: "--max-steps \(m) reached")
                    return .stoppedAtMaxSteps
                }
                let step = try trainStep(permutation: permutation)
                progress.stepInEpoch += 1; progress.globalStep += 1
                stepLosses.append(Float(step.loss))
                report.stepTaken(loss: step.loss, accuracy: step.accuracy)
                if progress.globalStep % options.logEvery == 0 || progress.stepInEpoch == stepsPerEpoch {
                    try report.progress(self, slowest: try straggler())
                }
                if step.stopSignal != 0 { return try stop(by: step.stopSignal) }
                if options.checkpointEvery > 0 && progress.globalStep % options.checkpointEvery == 0 {
                    try writeCheckpoint()
                }
            }
            progress.epoch += 1; progress.stepInEpoch = 0
            let due =
                progress.epoch == config.epochs || (options.evalEvery > 0 && progress.epoch % options.evalEvery == 0)
            try report.epochEnded(self) { due ? try evaluateAndRecord() : nil }
            // An evaluation can take long; a signal received during it stops the run before another step.
            if due && progress.epoch < config.epochs {
                let signal = try agreedStopSignal()
                if signal != 0 { return try stop(by: signal) }
            }
        }
        try finish(reason: nil)
        return .completed
    }

    /// The epoch's evaluations: validation (when images are held out) and test.
    private func evaluateAndRecord() throws -> (validation: Evaluation?, test: Evaluation) {
        let start = MPIRuntime.wallTime()
        let validation = validationSet.count > 0 ? try evaluate(validationSet) : nil
        let e = try evaluate()
        timeline?.spanBetweenSteps(
            "evaluation", category: "evaluation", from: start, to: MPIRuntime.wallTime(), lastStep: progress.globalStep)
        progress.bestTestAccuracy = max(progress.bestTestAccuracy, e.accuracy)
        return (validation, e)
    }

    /// The rank that computed longest in the last progress interval (step time minus time blocked
    /// on others) and its excess over the median rank (the lower median: with two ranks, the other
    /// one). On a cluster one slow host sets every rank's pace; this names it. Collective; nil with
    /// one rank.
    private func straggler() throws -> (rank: Int, host: String, excess: Double)? {
        guard let watchdog = communicator.watchdog else { return nil }
        watchdog.enter("straggler statistics")
        let busy = try communicator.allGather([busySeconds])
        busySeconds = 0
        let median = busy.sorted()[(busy.count - 1) / 2]
        guard let slowest = busy.indices.max(by: { busy[$0] < busy[$1] }) else { return nil }
        return (slowest, watchdog.hosts[slowest], median > 0 ? busy[slowest] / median - 1 : 0)
    }
}
