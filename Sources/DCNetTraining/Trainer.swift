import BLAS
import DCNetData
import DCNetFormats
import DCNetLayers
import DCNetMetrics
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
    /// Images per rank per forward pass: the global batch over ranks × micro-batches.
    let localBatch: Int
    /// Summed gradients of a step's earlier micro-batches (`--accumulate` > 1 only).
    private let accumulator: UnsafeMutablePointer<Float>?
    let images: Tensor
    let labels: UnsafeMutablePointer<Int32>
    /// Packed running statistics for averaging them over ranks (without synchronised statistics).
    private let statePacked: UnsafeMutablePointer<Float>
    private let stateCount: Int
    let schedule: LearningRateSchedule
    public let stepsPerEpoch: Int
    public private(set) var progress = TrainingProgress()
    public private(set) var timing = Timing()
    /// Loss of every step taken by this process (global mean over ranks), for tests and benchmarks.
    public private(set) var stepLosses: [Float] = []
    private var metrics: MetricsWriter?
    private var flags: [Int32] = [0, 0, 0]
    /// Seconds this rank computed (its step time minus time blocked on other ranks) since the
    /// last progress line: the straggler report compares it across ranks.
    private var busySeconds = 0.0
    private var stats: [Double] = [0, 0, 0]

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
        let rank = communicator.rank, size = communicator.size
        console = Console(rank: rank)
        if size > 1 {
            try communicator.installWatchdog(
                .init(
                    timeout: options.collectiveTimeout > 0 ? options.collectiveTimeout : nil,
                    program: "dcnet-dist"))
        }

        let problems = requested.problems(ranks: size) + options.problems()
        if !problems.isEmpty { throw JobError(rank: rank, problems.joined(separator: "\n")) }
        // Each rank reads its own environment (under mpirun inside an allocation, ranks on other
        // nodes may see another SLURM_NTASKS), so the verdict is agreed: one rank alone must not
        // give up while the others wait in the next collective.
        try communicator.agree(console: console, what: "checking the launch against Slurm") {
            if let tasks = ProcessInfo.processInfo.environment["SLURM_NTASKS"], let n = Int(tasks), n != size {
                throw JobError(
                    rank: rank,
                    "MPI world size \(size) differs from SLURM_NTASKS=\(n): launch with srun --mpi=pmix or mpirun inside the allocation (with -x SLURM_NTASKS)"
                )
            }
        }
        BLAS.threadCount = threadsPerRank(requested: options.threads, communicator: communicator)

        // Resume: rank 0 picks the newest checkpoint that verifies and sends its configuration.
        var resumeFrom: Checkpoint.Contents?
        var config = requested
        if options.resume, let dir = options.checkpointDirectory {
            if rank == 0 {
                resumeFrom = Checkpoint.newestValid(in: dir) { path, error in
                    Console(rank: 0).error("skipping damaged checkpoint \(path): \(error)")
                }
                if let r = resumeFrom { config = r.config }
            }
            var json = Array((try? JSONEncoder().encode(config)) ?? Data())
            var length = Int64(json.count)
            communicator.watchdog?.enter("broadcast of the resumed configuration")
            length = try communicator.broadcast(length, root: 0)
            if rank != 0 { json = Array(repeating: 0, count: Int(length)) }
            try communicator.broadcast(&json, root: 0)
            try communicator.agree(console: console, what: "decoding the resumed configuration") {
                config = try JSONDecoder().decode(TrainingConfig.self, from: Data(json))
            }
            let stored = config.problems(ranks: size)
            if !stored.isEmpty {
                throw JobError(
                    rank: rank, "the checkpoint's configuration cannot run here: " + stored.joined(separator: "; "))
            }
        }
        self.config = config

        var loaded: (LabeledImages, LabeledImages)?
        let variant = config.variant
        try communicator.agree(console: console, what: "loading \(variant.rawValue) from \(options.dataDirectory)") {
            loaded = (
                try CIFAR.load(directory: options.dataDirectory, variant: variant, split: .train),
                try CIFAR.load(directory: options.dataDirectory, variant: variant, split: .test)
            )
        }
        trainSet = loaded!.0
        testSet = options.evalLimit.map { loaded!.1.prefix(min($0, loaded!.1.count)) } ?? loaded!.1

        localBatch = config.globalBatch / (size * config.microBatches)
        network = config.model.makeNetwork(batch: localBatch)
        optimizer = Optimizer(config: config, network: network)
        exchange = GradientExchange(
            communicator: communicator, gradients: network.gradients,
            layerRanges: network.layerParameterRanges,
            bucketBytes: Int(options.bucketMegabytes * 1_048_576),
            compression: options.gradientCompression)
        if config.syncBatchNorm && size > 1 {
            let reducer = CommunicatorStatistics(communicator)
            for layer in network.allLayers {
                (layer as? BatchNorm2D)?.statisticsReducer = reducer
                (layer as? DecoupledConv2D)?.statisticsReducer = reducer
            }
        }
        images = network.arena.tensor(network.inputShape)
        labels = .allocate(capacity: localBatch)
        accumulator = config.microBatches > 1 ? network.arena.floats(network.parameterCount) : nil
        stateCount = network.state.reduce(0) { $0 + $1.count }
        statePacked = network.arena.floats(max(stateCount, 1))
        stepsPerEpoch = DataOrder.stepsPerEpoch(
            count: trainSet.count, globalBatch: config.globalBatch,
            policy: config.remainder.policy)
        guard stepsPerEpoch > 0 else {
            throw JobError(
                rank: rank, "--batch-size \(config.globalBatch) is larger than the \(trainSet.count) training images")
        }
        schedule = LearningRateSchedule(
            peak: config.peakLearningRate, kind: config.schedule,
            warmupSteps: Int((config.warmupEpochs * Double(stepsPerEpoch)).rounded()),
            totalSteps: config.epochs * stepsPerEpoch, stepsPerEpoch: stepsPerEpoch,
            milestones: config.stepMilestones, gamma: config.stepGamma)

        // Rank 0 initialises or loads; everyone receives the same state.
        let network = network, optimizer = optimizer, model = config.model, seed = config.seed
        var restored: TrainingProgress?
        try communicator.agree(console: console, what: "loading checkpoint \(resumeFrom?.path ?? "")") {
            guard rank == 0 else { return }
            if let r = resumeFrom {
                try Checkpoint.apply(r, to: network, optimizer: optimizer, model: model)
                restored = r.progress
            } else {
                var rng = Xoshiro256StarStar(seed: seed)
                network.initializeParameters(using: &rng)
            }
        }
        if let restored { progress = restored }
        try broadcastReplicaState()
        try verifyIdenticalReplicas()
        if let r = resumeFrom {
            let note =
                r.progress.ranks == size
                ? ""
                : " (written with \(r.progress.ranks) ranks; same global batch \(config.globalBatch), now \(size) ranks × \(localBatch))"
            console.print("resumed from \(r.path) at epoch \(progress.epoch + 1), step \(progress.globalStep)\(note)")
        }
        progress.ranks = size

        if rank == 0, let path = options.metricsPath {
            var writer: MetricsWriter?
            try communicator.agree(console: console, what: "opening \(path)") { writer = try MetricsWriter(path: path) }
            metrics = writer
        } else {
            try communicator.agree(console: console, what: "opening the metrics file") {}
        }
    }

    deinit { labels.deallocate() }

    private func broadcastReplicaState() throws {
        communicator.watchdog?.enter("initial broadcast of parameters and state")
        try communicator.broadcast(network.valueBuffer, root: 0)
        for s in network.state {
            try communicator.broadcast(UnsafeMutableBufferPointer(start: s.data, count: s.count), root: 0)
        }
        for o in optimizer.stateBuffers {
            try communicator.broadcast(UnsafeMutableBufferPointer(start: o.data, count: o.count), root: 0)
        }
        var counters = [
            Int64(progress.epoch), Int64(progress.stepInEpoch), Int64(progress.globalStep),
            Int64(progress.adamSteps), Int64(progress.ranks),
        ]
        try communicator.broadcast(&counters, root: 0)
        progress.epoch = Int(counters[0]); progress.stepInEpoch = Int(counters[1])
        progress.globalStep = Int(counters[2]); progress.adamSteps = Int(counters[3])
        progress.ranks = Int(counters[4])
        optimizer.adamSteps = progress.adamSteps
        var best = [progress.bestTestAccuracy]
        try communicator.broadcast(&best, root: 0)
        progress.bestTestAccuracy = best[0]
    }

    /// CRC32 of every parameter, running statistic and optimizer moment; all ranks must agree.
    public func replicaChecksum() -> UInt32 {
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(network.valueBuffer))
        for s in network.state { crc.update(UnsafeRawBufferPointer(start: s.data, count: s.count * 4)) }
        for o in optimizer.stateBuffers { crc.update(UnsafeRawBufferPointer(start: o.data, count: o.count * 4)) }
        return crc.value
    }

    public func verifyIdenticalReplicas() throws {
        let c = Int64(replicaChecksum())
        var range: [Int64] = [c, -c]
        communicator.watchdog?.enter("replica checksum comparison")
        try communicator.allReduce(&range, op: .max)
        if range[0] != -range[1] {
            throw JobError(
                rank: communicator.rank,
                "replicas differ after the broadcast (checksums range over \(-range[1])…\(range[0]))")
        }
    }

    // MARK: - the training step

    /// One step: shard, batch, forward, loss, backward with overlapped all-reduce, agreement, update.
    /// With `--accumulate K` the shard is cut into K micro-batches, micro-batch k of rank r being
    /// what rank r·K + k of N·K ranks would take; their gradients are summed and the last
    /// micro-batch's backward adds the sum into each bucket as it starts the bucket's all-reduce.
    /// Returns the global mean loss and accuracy and whether any rank was asked to stop.
    func trainStep(permutation: [Int]) throws -> (loss: Double, accuracy: Double, stop: Bool) {
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
                augment: config.augment, scaling: config.scaling.scaling, into: images.data, labels: labels)
            let t2 = MPIRuntime.wallTime()
            let logits = network.forward(images.prefix(samples: shard.count), mode: .training)
            let (loss, c) = network.loss.forward(logits: logits, labels: labels)
            lossSum += loss * Float(shard.count); correct += c; count += shard.count
            let t3 = MPIRuntime.wallTime()
            let last = k == K - 1
            if last { exchange.begin(adding: accumulator) }
            try network.backward(network.loss.backward(scale: 1 / Float(K))) { if last { try exchange.layerDone($0) } }
            if !last { accumulateGradients(first: k == 0) }
            timing.data += t2 - t1; timing.forward += t3 - t2; timing.backward += MPIRuntime.wallTime() - t3
        }
        let t4 = MPIRuntime.wallTime()
        try exchange.finish()
        let t5 = MPIRuntime.wallTime()
        let result = try agreeOnStep(loss: lossSum / Float(count), correct: correct, count: count)
        optimizer.step(learningRate: schedule.rate(at: progress.globalStep), globalStep: progress.globalStep)
        try averageRunningStatistics()
        let t6 = MPIRuntime.wallTime()
        timing.exposedCommunication += t5 - t4; timing.update += t6 - t5; timing.steps += 1
        busySeconds += (t6 - t0) - ((communicator.watchdog?.blockedSeconds ?? 0) - blockedBefore)
        return result
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
    private func agreeOnStep(loss: Float, correct: Int, count: Int) throws -> (
        loss: Double, accuracy: Double, stop: Bool
    ) {
        let rank = communicator.rank
        let gradientsFinite = sumFloats(network.gradients, network.parameterCount).isFinite
        flags[0] = loss.isFinite ? 0 : Int32(rank + 1)
        flags[1] = gradientsFinite ? 0 : Int32(rank + 1)
        flags[2] = PreemptionSignal.received ? 1 : 0
        communicator.watchdog?.enter("step agreement")
        try communicator.allReduce(&flags, op: .max)
        stats[0] = Double(loss) * Double(count); stats[1] = Double(correct); stats[2] = Double(count)
        try communicator.allReduce(&stats, op: .sum)
        if flags[0] > 0 {
            throw JobError(
                rank: Int(flags[0] - 1),
                "the training loss is not finite at step \(progress.globalStep + 1) (epoch \(progress.epoch + 1)); lower --lr or check the data"
            )
        }
        if flags[1] > 0 {
            throw JobError(
                rank: Int(flags[1] - 1),
                "non-finite gradients at step \(progress.globalStep + 1) (epoch \(progress.epoch + 1))")
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

    /// Without synchronised statistics each rank's BatchNorm running statistics and running mean
    /// patch norms follow its own shard; averaging them after every step keeps the replicas identical
    /// (evaluation shards, rank 0's checkpoints, `replicaChecksum`). The EMAs are linear, so this is
    /// the average of the per-rank estimates.
    private func averageRunningStatistics() throws {
        guard communicator.size > 1, !config.syncBatchNorm, stateCount > 0 else { return }
        var offset = 0
        for s in network.state { (statePacked + offset).update(from: s.data, count: s.count); offset += s.count }
        communicator.watchdog?.enter("running-statistics average")
        try communicator.allReduce(UnsafeMutableBufferPointer(start: statePacked, count: stateCount), op: .sum)
        offset = 0
        let ranks = Float(communicator.size)
        for s in network.state {
            for i in 0..<s.count { s.data[i] = statePacked[offset + i] / ranks }
            offset += s.count
        }
    }

    // MARK: - the loop

    public func run() throws -> Outcome {
        PreemptionSignal.install()
        communicator.watchdog?.stopRequested = { PreemptionSignal.received }
        let size = communicator.size
        console.print(
            "dcnet-dist: \(config.model.architecture.rawValue) \(config.model.widths) \(config.model.convolution), "
                + "BN \(config.model.batchNorm ? "on" : "off"), ReLU \(config.model.relu ? "on" : "off"); "
                + "\(network.parameterCount) parameters; \(size) rank(s) × \(BLAS.threadCount) thread(s); "
                + "global batch \(config.globalBatch) (\(localBatch) per rank\(config.microBatches > 1 ? " × \(config.microBatches) accumulated micro-batches" : "")); "
                + "peak learning rate \(config.peakLearningRate)\(learningRateNote); \(trainSet.count) training / \(testSet.count) test images; "
                + "\(stepsPerEpoch) steps per epoch; \(exchange.bucketCount) gradient bucket(s)")
        var configLine = RunConfig(
            run: (options.checkpointDirectory as NSString?)?.lastPathComponent ?? "run",
            config: try? JSONValue(encoding: config), date: ISO8601DateFormatter().string(from: Date()),
            command: options.commandLine, ranks: size, parameters: network.parameterCount)
        // The binary does not know its source revision; scripts/experiments (and any launcher)
        // passes it in so reports can say which code produced each run.
        if let commit = ProcessInfo.processInfo.environment["DCNET_COMMIT"], !commit.isEmpty {
            configLine.commit = commit
        }
        try metrics?.append(.config(configLine))
        var windowStart = MPIRuntime.wallTime(), windowSteps = 0
        var lossSum = 0.0, accuracySum = 0.0, epochLoss = 0.0, epochAccuracy = 0.0, epochSteps = 0
        var epochStart = MPIRuntime.wallTime()
        let runStart = MPIRuntime.wallTime(), startStep = progress.globalStep
        let totalSteps = config.epochs * stepsPerEpoch
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
                lossSum += step.loss; accuracySum += step.accuracy; windowSteps += 1
                epochLoss += step.loss; epochAccuracy += step.accuracy; epochSteps += 1
                if progress.globalStep % options.logEvery == 0 || progress.stepInEpoch == stepsPerEpoch {
                    let now = MPIRuntime.wallTime()
                    let rate = Double(windowSteps * config.globalBatch) / (now - windowStart)
                    let perStep = (now - runStart) / Double(progress.globalStep - startStep)
                    let eta = perStep * Double(totalSteps - progress.globalStep)
                    let lr = schedule.rate(at: progress.globalStep - 1)
                    let slowest = try straggler()
                    let slowestNote =
                        slowest.map {
                            String(
                                format: "  slowest %@ +%.1f%%", communicator.watchdog?.name($0.rank) ?? "",
                                100 * $0.excess)
                        } ?? ""
                    console.print(
                        String(
                            format: "step %6d  epoch %3d/%d  loss %.4f  acc %5.1f%%  lr %.5f  %7.1f img/s  ETA %@",
                            progress.globalStep, progress.epoch + 1, config.epochs, lossSum / Double(windowSteps),
                            100 * accuracySum / Double(windowSteps), lr, rate, formatDuration(eta)) + slowestNote)
                    let record = ProgressRecord(
                        step: progress.globalStep, epoch: progress.epoch + 1, loss: lossSum / Double(windowSteps),
                        accuracy: accuracySum / Double(windowSteps), imagesPerSecond: rate, learningRate: Double(lr),
                        etaSeconds: eta, slowestRank: slowest?.rank, slowestHost: slowest?.host,
                        slowestExcess: slowest?.excess)
                    try metrics?.append(.progress(record))
                    windowStart = now; windowSteps = 0; lossSum = 0; accuracySum = 0
                }
                if step.stop {
                    console.print("stop requested (SIGTERM/SIGUSR1): checkpointing at step \(progress.globalStep)")
                    try writeCheckpoint()
                    return .preempted
                }
                if options.checkpointEvery > 0 && progress.globalStep % options.checkpointEvery == 0 {
                    try writeCheckpoint()
                }
            }
            let trainSeconds = MPIRuntime.wallTime() - epochStart
            progress.epoch += 1; progress.stepInEpoch = 0
            var record = EpochRecord(
                epoch: progress.epoch, step: progress.globalStep,
                trainLoss: epochLoss / Double(max(epochSteps, 1)),
                trainAccuracy: epochAccuracy / Double(max(epochSteps, 1)),
                imagesPerSecond: Double(epochSteps * config.globalBatch) / trainSeconds,
                learningRate: Double(schedule.rate(at: progress.globalStep - 1)))
            let last = progress.epoch == config.epochs
            if last || (options.evalEvery > 0 && progress.epoch % options.evalEvery == 0) {
                let e = try evaluate()
                progress.bestTestAccuracy = max(progress.bestTestAccuracy, e.accuracy)
                record.testLoss = e.loss; record.testAccuracy = e.accuracy
                console.print(
                    String(
                        format: "epoch %d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% (%d images) | %.0f s",
                        progress.epoch, epochLoss / Double(max(epochSteps, 1)),
                        100 * epochAccuracy / Double(max(epochSteps, 1)), e.loss, 100 * e.accuracy, e.count,
                        MPIRuntime.wallTime() - epochStart))
            }
            record.wallSeconds = MPIRuntime.wallTime() - epochStart
            try metrics?.append(.epoch(record))
            epochLoss = 0; epochAccuracy = 0; epochSteps = 0; epochStart = MPIRuntime.wallTime()
        }
        try finish(reason: nil)
        return .completed
    }

    /// How the peak learning rate came from --lr, for the start line ("" without scaling).
    private var learningRateNote: String {
        guard let scaling = config.learningRateScaling, scaling != .none else { return "" }
        return
            " (--lr \(config.learningRate) with \(scaling.rawValue) scaling: global batch \(config.globalBatch) / reference \(config.referenceBatch ?? 128))"
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

    private func finish(reason: String?) throws {
        if let reason { console.print("stopping: \(reason)") }
        if reason != nil && options.evalEvery > 0 {
            let e = try evaluate()
            console.print(String(format: "test loss %.4f acc %.2f%% (%d images)", e.loss, 100 * e.accuracy, e.count))
            try metrics?.append(
                .evaluation(EvaluationRecord(step: progress.globalStep, testLoss: e.loss, testAccuracy: e.accuracy)))
        }
        try writeCheckpoint()
    }

    /// Rank 0 writes (temporary file, fsync, rename, checksum inside); all ranks learn whether it
    /// worked from the status all-reduce, which is also the barrier after the write.
    public func writeCheckpoint() throws {
        guard let dir = options.checkpointDirectory else { return }
        progress.adamSteps = optimizer.adamSteps
        let progress = progress, network = network, optimizer = optimizer, config = config
        let console = console, keep = options.keep
        try communicator.agree(console: console, what: "writing a checkpoint") {
            guard communicator.rank == 0 else { return }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let path = dir + "/" + Checkpoint.fileName(step: progress.globalStep)
            try Checkpoint.write(to: path, network: network, optimizer: optimizer, config: config, progress: progress)
            Checkpoint.prune(directory: dir, keep: keep)
            console.print("checkpoint: \(path)")
        }
    }
}

func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s)
    return t >= 3600
        ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}
