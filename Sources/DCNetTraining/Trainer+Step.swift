import BLAS
import DCNetData
import DCNetTensor
import MPI

// The training step, and what it is made of.
extension Trainer {
    /// One step: shard, batch, forward, loss, backward with overlapped all-reduce, agree, update.
    /// Returns the global mean loss and accuracy and the stop signal any rank received (0: none).
    ///
    /// With `--accumulate K` the rank's shard is cut into K micro-batches, micro-batch k of rank r
    /// being what rank r·K + k of N·K ranks would take. The first K − 1 are summed into the
    /// accumulator; the last one's backward adds that sum into each bucket as the bucket's
    /// all-reduce starts, so accumulation costs no extra pass and no extra all-reduce.
    func trainStep(permutation: [Int]) throws -> (loss: Double, accuracy: Double, stopSignal: Int32) {
        try writeTimelineIfDue()  // before the step after its range, so the range's evaluation is in
        var clock = StepClock(step: progress.globalStep + 1, timeline: timeline, watchdog: communicator.watchdog)
        let global = DataOrder.globalBatchIndices(
            permutation: permutation, step: progress.stepInEpoch,
            globalBatch: config.globalBatch, policy: config.remainder.policy)
        var batch = BatchResult()
        for k in 0..<(config.microBatches - 1) {
            batch += try forwardBackward(global, microBatch: k, clock: &clock)
            accumulateGradients(first: k == 0)
        }
        exchange.begin(adding: accumulator)
        batch += try forwardBackward(global, microBatch: config.microBatches - 1, clock: &clock)
        try exchange.finish()
        timing.exposedCommunication += clock.lap("wait for all-reduce", category: "communication")
        let result = try agreeOnStep(batch)
        optimizer.step(learningRate: schedule.rate(at: progress.globalStep), globalStep: progress.globalStep)
        try averageRunningStatistics()
        timing.update += clock.lap("agree and update", category: "update")
        timing.steps += 1
        busySeconds += clock.busySeconds
        return result
    }

    /// Loss sum, correct predictions and images of a step's micro-batches on this rank.
    struct BatchResult {
        var lossSum: Float = 0, correct = 0, count = 0
        static func += (a: inout BatchResult, b: BatchResult) {
            a.lossSum += b.lossSum; a.correct += b.correct; a.count += b.count
        }
    }

    /// Batch, forward, loss and backward of micro-batch `k` of this rank's shard of `global`.
    /// Backward hands each finished layer to the gradient exchange, which starts the all-reduce of
    /// the buckets it completes (only for the step's last micro-batch: `exchange.begin` was called).
    private func forwardBackward(_ global: [Int], microBatch k: Int, clock: inout StepClock) throws -> BatchResult {
        let K = config.microBatches
        let shard = DataOrder.shard(global, rank: communicator.rank * K + k, size: communicator.size * K)
        fillBatch(
            images: trainSet, indices: shard, epoch: progress.epoch, seed: config.seed,
            augment: config.augment, scaling: config.scaling.scaling, padding: config.padding ?? .zero,
            into: images.data, labels: labels)
        timing.data += clock.lap("data", category: "data", microBatch: k)
        let input = images.prefix(samples: shard.count)
        let logits =
            clock.trace.map { forwardTraced(input, $0, microBatch: k) } ?? network.forward(input, mode: .training)
        let (loss, correct) = network.loss.forward(logits: logits, labels: labels)
        timing.forward += clock.lap()
        let exchanging = k == K - 1
        var layerStart = clock.now
        try network.backward(network.loss.backward(scale: 1 / Float(K))) { layer in
            if let trace = clock.trace {
                let now = MPIRuntime.wallTime()
                trace.span(
                    "backward \(network.layers[layer].name)", category: "backward", from: layerStart, to: now,
                    args: ["layer": layer, "micro_batch": k])
                layerStart = now
            }
            if exchanging { try exchange.layerDone(layer) }
        }
        timing.backward += clock.lap()
        return BatchResult(lossSum: loss * Float(shard.count), correct: correct, count: shard.count)
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

    /// Adds this micro-batch's gradients (layers overwrite theirs in backward) to the step's sum.
    private func accumulateGradients(first: Bool) {
        guard let accumulator else { return }
        if first {
            accumulator.update(from: network.gradients, count: network.parameterCount)
        } else {
            BLAS.saxpy(count: network.parameterCount, alpha: 1, x: network.gradients, y: accumulator)
        }
    }

    /// Agrees on non-finite values and stop requests, so every rank takes the same decision before
    /// the update, and sums loss and accuracy over ranks. Gradients are judged as this rank computed
    /// them, before the all-reduce: after it every rank holds the NaN of one.
    private func agreeOnStep(_ batch: BatchResult) throws -> (loss: Double, accuracy: Double, stopSignal: Int32) {
        let loss = batch.lossSum / Float(batch.count)
        let gradientsFinite =
            communicator.size > 1
            ? exchange.localGradientsFinite : sumFloats(network.gradients, network.parameterCount).isFinite
        let step = progress.globalStep + 1, epoch = progress.epoch + 1
        let stop = try communicator.agree("step agreement", vote: PreemptionSignal.received) {
            guard loss.isFinite else {
                throw LocalFailure(
                    "the training loss is not finite at step \(step) (epoch \(epoch)); lower --lr or check the data")
            }
            guard gradientsFinite else {
                throw LocalFailure("non-finite gradients at step \(step) (epoch \(epoch)), before averaging")
            }
        }.vote
        stats[0] = Double(batch.lossSum); stats[1] = Double(batch.correct); stats[2] = Double(batch.count)
        try communicator.allReduce(&stats, op: .sum)
        return (stats[0] / stats[2], stats[1] / stats[2], stop)
    }
}

/// The one clock of a training step: each phase's duration (for `Timing`), its span on the
/// timeline while the step is in `--timeline-steps`, the watchdog's step number, and the time this
/// rank computed rather than waited on others (for the straggler report).
struct StepClock {
    /// The timeline when this step is recorded, else nil.
    let trace: Timeline?
    private let watchdog: CollectiveWatchdog?
    private let start: Double
    private let blockedAtStart: Double
    private(set) var now: Double

    init(step: Int, timeline: Timeline?, watchdog: CollectiveWatchdog?) {
        timeline?.beginStep(step)
        trace = timeline?.isRecording == true ? timeline : nil
        watchdog?.progress = step
        self.watchdog = watchdog
        start = MPIRuntime.wallTime()
        blockedAtStart = watchdog?.blockedSeconds ?? 0
        now = start
    }

    /// Ends the phase that began at the previous lap and returns its seconds; a named phase is also
    /// a span on the timeline.
    mutating func lap(_ name: String? = nil, category: String = "", microBatch: Int? = nil) -> Double {
        let end = MPIRuntime.wallTime()
        if let name, let trace {
            trace.span(
                name, category: category, from: now, to: end, args: microBatch.map { ["micro_batch": $0] } ?? [:])
        }
        defer { now = end }
        return end - now
    }

    /// Seconds since the step began, less those blocked in collectives waiting on other ranks.
    var busySeconds: Double { (now - start) - ((watchdog?.blockedSeconds ?? 0) - blockedAtStart) }
}
