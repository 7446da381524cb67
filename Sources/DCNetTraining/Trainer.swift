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
    private let accumulator: UnsafeMutablePointer<Float>?
    let images: Tensor
    let labels: UnsafeMutablePointer<Int32>
    /// Packed running statistics for averaging them over ranks (without synchronised statistics).
    let statePacked: UnsafeMutablePointer<Float>
    let stateCount: Int
    let schedule: LearningRateSchedule
    public let stepsPerEpoch: Int
    public internal(set) var progress = TrainingProgress()
    public private(set) var timing = Timing()
    /// Loss of every step taken by this process (global mean over ranks), for tests and benchmarks.
    public private(set) var stepLosses: [Float] = []
    /// The GEMM precision all ranks agreed on (`--precision` resolved).
    public let precision: Precision
    var report: TrainingReport!
    private var flags: [Int32] = [0, 0, 0]
    /// Seconds this rank computed (its step time minus time blocked on other ranks) since the
    /// last progress line: the straggler report compares it across ranks.
    private var busySeconds = 0.0
    private var stats: [Double] = [0, 0, 0]
    /// Step of the newest checkpoint written or resumed from: a stop without a step since then
    /// writes none.
    var checkpointedStep: Int?
    /// `DCNET_FAULT` for this rank, if any (tests of failure handling).
    let fault: InjectedFault?
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
        fault = try Self.checkLaunch(requested, options: options, communicator: communicator, console: console)
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
        try communicator.agree(console: console, what: "checking the batch against the training images") {
            guard steps > 0 else {
                throw JobError(
                    rank: communicator.rank, "--batch-size \(batch) is larger than the \(available) training images")
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
        let rank = communicator.rank, size = communicator.size
        if size > 1 {
            try communicator.installWatchdog(
                .init(timeout: options.collectiveTimeout > 0 ? options.collectiveTimeout : nil, program: "dcnet-dist"))
        }
        // Agreed: ranks of an MPMD launch may be given different flags, and a rank that gave up alone
        // would leave the others waiting in the next collective until the watchdog's deadline.
        let problems = config.problems(ranks: size) + options.problems()
        try communicator.agree(console: console, what: "checking the configuration") {
            if !problems.isEmpty { throw JobError(rank: rank, problems.joined(separator: "\n")) }
        }
        // Each rank reads its own environment (under mpirun inside an allocation, ranks on other
        // nodes may see another SLURM_NTASKS), so the verdict is agreed: one rank alone must not
        // give up while the others wait in the next collective.
        try communicator.agree(console: console, what: "checking the launch against Slurm") {
            if let tasks = ProcessInfo.processInfo.environment["SLURM_NTASKS"], let n = Int(tasks), n != size {
                throw JobError(
                    rank: rank,
                    "MPI world size \(size) differs from SLURM_NTASKS=\(n): launch with srun --mpi=pmix or "
                        + "mpirun inside the allocation (with -x SLURM_NTASKS)")
            }
        }
        // The CLI installs the handler before MPI_Init; installing again here covers a library that
        // replaced it since, and callers that did not install it, before the long data loading.
        PreemptionSignal.install()
        communicator.watchdog?.stopRequested = { PreemptionSignal.received != 0 }
        var fault: InjectedFault?
        try communicator.agree(console: console, what: "reading \(InjectedFault.variable)") {
            fault = try InjectedFault.fromEnvironment()
        }
        return fault.flatMap { $0.rank == communicator.rank ? $0 : nil }
    }

    /// The training and test sets (the test set cut to --eval-limit), read by every rank.
    private static func loadData(
        _ config: TrainingConfig, options: RunOptions, communicator: Communicator, console: Console
    ) throws -> (train: LabeledImages, validation: LabeledImages, test: LabeledImages) {
        var loaded: (LabeledImages, LabeledImages)?
        let variant = config.variant, dir = options.dataDirectory, held = config.validation ?? 0
        try communicator.agree(console: console, what: "loading \(variant.rawValue) from \(dir)") {
            loaded = (
                try CIFAR.load(directory: dir, variant: variant, split: .train),
                try CIFAR.load(directory: dir, variant: variant, split: .test)
            )
        }
        let (all, test) = loaded!
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
        var restored: TrainingProgress?
        try communicator.agree(console: console, what: "loading checkpoint \(checkpoint?.path ?? "")") {
            guard rank == 0 else { return }
            if let c = checkpoint {
                try Checkpoint.apply(c, to: network, optimizer: optimizer, model: model)
                restored = c.progress
            } else {
                var rng = Xoshiro256StarStar(seed: seed)
                network.initializeParameters(using: &rng)
            }
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

    // MARK: - the training step

    /// One step: shard, batch, forward, loss, backward with overlapped all-reduce, agreement, update.
    /// With `--accumulate K` the shard is cut into K micro-batches, micro-batch k of rank r being
    /// what rank r·K + k of N·K ranks would take; their gradients are summed and the last
    /// micro-batch's backward adds the sum into each bucket as it starts the bucket's all-reduce.
    /// Returns the global mean loss and accuracy and whether any rank was asked to stop.
    func trainStep(permutation: [Int]) throws -> (loss: Double, accuracy: Double, stop: Bool) {
        // Written before the step after the range, so the range's evaluation and checkpoint are in.
        try writeTimelineIfDue()
        timeline?.beginStep(progress.globalStep + 1)
        let trace = timeline?.isRecording == true ? timeline : nil
        let t0 = MPIRuntime.wallTime()
        let blockedBefore = communicator.watchdog?.blockedSeconds ?? 0
        communicator.watchdog?.step = progress.globalStep + 1
        let global = DataOrder.globalBatchIndices(
            permutation: permutation, step: progress.stepInEpoch,
            globalBatch: config.globalBatch, policy: config.remainder.policy)
        let K = config.microBatches
        var lossSum: Float = 0, correct = 0, count = 0
        for k in 0..<K {
            let t1 = MPIRuntime.wallTime()
            let shard = DataOrder.shard(global, rank: communicator.rank * K + k, size: communicator.size * K)
            fillBatch(
                images: trainSet, indices: shard, epoch: progress.epoch, seed: config.seed,
                augment: config.augment, scaling: config.scaling.scaling, padding: config.padding ?? .zero,
                into: images.data, labels: labels)
            let t2 = MPIRuntime.wallTime()
            let input = images.prefix(samples: shard.count)
            let logits =
                trace.map { forwardTraced(input, $0, microBatch: k) } ?? network.forward(input, mode: .training)
            let (loss, c) = network.loss.forward(logits: logits, labels: labels)
            lossSum += loss * Float(shard.count); correct += c; count += shard.count
            let t3 = MPIRuntime.wallTime()
            let last = k == K - 1
            if last { exchange.begin(adding: accumulator) }
            let faultNow = fault.flatMap { $0.step == progress.globalStep + 1 && last ? $0.kind : nil }
            let scale = faultNow == .nan ? Float.nan : 1 / Float(K)
            var layerStart = MPIRuntime.wallTime()
            try network.backward(network.loss.backward(scale: scale)) { layer in
                if let trace {
                    let now = MPIRuntime.wallTime()
                    trace.span(
                        "backward \(network.layers[layer].name)", category: "backward", from: layerStart, to: now,
                        args: ["layer": layer, "micro_batch": k])
                    layerStart = now
                }
                if last { try exchange.layerDone(layer) }
            }
            if faultNow == .throw { throw InjectedFailure(step: progress.globalStep + 1) }
            if !last { accumulateGradients(first: k == 0) }
            timing.data += t2 - t1; timing.forward += t3 - t2; timing.backward += MPIRuntime.wallTime() - t3
            trace?.span("data", category: "data", from: t1, to: t2, args: ["micro_batch": k])
        }
        let t4 = MPIRuntime.wallTime()
        try exchange.finish()
        let t5 = MPIRuntime.wallTime()
        let result = try agreeOnStep(loss: lossSum / Float(count), correct: correct, count: count)
        optimizer.step(learningRate: schedule.rate(at: progress.globalStep), globalStep: progress.globalStep)
        try averageRunningStatistics()
        let t6 = MPIRuntime.wallTime()
        timing.exposedCommunication += t5 - t4; timing.update += t6 - t5; timing.steps += 1
        if let trace {
            trace.span("wait for all-reduce", category: "communication", from: t4, to: t5)
            trace.span("agree and update", category: "update", from: t5, to: t6)
        }
        busySeconds += (t6 - t0) - ((communicator.watchdog?.blockedSeconds ?? 0) - blockedBefore)
        return result
    }

    /// The training forward with each layer on the timeline.
    private func forwardTraced(_ input: Tensor, _ trace: Timeline, microBatch: Int) -> Tensor {
        var start = 0.0
        return network.forward(input, mode: .training) { layer, ended in
            let now = MPIRuntime.wallTime()
            if ended {
                trace.span(
                    "forward \(network.layers[layer].name)", category: "forward", from: start, to: now,
                    args: ["layer": layer, "micro_batch": microBatch])
            } else {
                start = now
            }
        }
    }

    /// `--timeline`: writes the trace once its last step is done (collective, like the steps).
    func writeTimelineIfDue(force: Bool = false) throws {
        guard let timeline, !timeline.written, force || progress.globalStep >= timeline.steps.upperBound else { return }
        try timeline.write(communicator, console: console)
    }

    /// Adds this micro-batch's gradients (layers overwrite theirs in backward) to the step's sum.
    private func accumulateGradients(first: Bool) {
        guard let accumulator else { return }
        if first {
            accumulator.update(from: network.gradients, count: network.parameterCount)
        } else {
            BLAS.saxpy(count: network.parameterCount, alpha: 1, x: network.gradients, y: accumulator)
        }
    }

    /// Sums loss and accuracy over ranks and agrees on non-finite values and stop requests, so every
    /// rank takes the same decision before the update.
    ///
    /// A non-finite value is blamed on the lowest rank whose own values were non-finite: flags hold
    /// size − rank, so the .max all-reduce picks the lowest such rank. Gradients are judged as this
    /// rank computed them, before the all-reduce: after it every rank holds the NaN of one.
    private func agreeOnStep(loss: Float, correct: Int, count: Int) throws -> (
        loss: Double, accuracy: Double, stop: Bool
    ) {
        let rank = communicator.rank, size = communicator.size
        let gradientsFinite =
            size > 1 ? exchange.localGradientsFinite : sumFloats(network.gradients, network.parameterCount).isFinite
        flags[0] = loss.isFinite ? 0 : Int32(size - rank)
        flags[1] = gradientsFinite ? 0 : Int32(size - rank)
        flags[2] = PreemptionSignal.received
        communicator.watchdog?.enter("step agreement")
        try communicator.allReduce(&flags, op: .max)
        stats[0] = Double(loss) * Double(count); stats[1] = Double(correct); stats[2] = Double(count)
        try communicator.allReduce(&stats, op: .sum)
        if flags[0] > 0 {
            throw JobError(
                rank: size - Int(flags[0]),
                "the training loss is not finite at step \(progress.globalStep + 1) (epoch \(progress.epoch + 1)); "
                    + "lower --lr or check the data"
            )
        }
        if flags[1] > 0 {
            throw JobError(
                rank: size - Int(flags[1]),
                "non-finite gradients at step \(progress.globalStep + 1) (epoch \(progress.epoch + 1)), first on this "
                    + "rank (the lowest whose own gradients were non-finite before averaging)")
        }
        return (stats[0] / stats[2], stats[1] / stats[2], flags[2] > 0)
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
                if step.stop { return try stop(by: flags[2]) }
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
