import BLAS
import DCNetLayers
import DCNetMetrics
import Foundation
import MPI

/// What a run tells its user: rank 0's console lines and metrics records (start, progress every
/// --log-every steps, epoch summaries, evaluations). The trainer hands it numbers; every line and
/// record is formatted here.
final class TrainingReport {
    let console: Console
    private let metrics: MetricsWriter?
    /// `--tensorboard DIR` on rank 0: the same records as TensorBoard scalars.
    private let tensorboard: TensorBoardRun?
    /// Sums over the steps since the last progress line, and since the epoch began.
    private var window = Window(), epoch = Window()
    private let runStart = MPIRuntime.wallTime()
    private var startStep = 0

    struct Window {
        var start = MPIRuntime.wallTime(), steps = 0, loss = 0.0, accuracy = 0.0
        /// The trainer's exposed-communication total when the window began.
        var exposedAtStart = 0.0
        var meanLoss: Double { loss / Double(max(steps, 1)) }
        var meanAccuracy: Double { accuracy / Double(max(steps, 1)) }
    }

    /// Opens the metrics file and the TensorBoard run on rank 0 (agreed: a rank-0 failure ends the
    /// job on every rank). `resuming`: the TensorBoard directory may hold this run's earlier files.
    init(
        console: Console, metricsPath: String?, tensorboardDirectory: String? = nil, resuming: Bool = false,
        communicator: Communicator
    ) throws {
        self.console = console
        let onRankZero = communicator.rank == 0
        metrics = try communicator.agree("opening the metrics file \(metricsPath ?? "")") {
            try metricsPath.flatMap { onRankZero ? try MetricsWriter(path: $0) : nil }
        }
        tensorboard = try communicator.agree("opening the TensorBoard run \(tensorboardDirectory ?? "")") {
            try tensorboardDirectory.flatMap {
                onRankZero ? try TensorBoardRun(directory: $0, resuming: resuming) : nil
            }
        }
    }

    /// A record to every sink of rank 0.
    private func write(_ record: MetricsRecord) throws {
        try metrics?.append(record)
        try tensorboard?.append([record])
    }

    func started(_ t: Trainer) throws {
        let config = t.config, model = config.model
        let accumulation = config.microBatches > 1 ? " × \(config.microBatches) accumulated micro-batches" : ""
        console.print(
            "dcnet-dist: \(model.architecture.rawValue) \(model.widths) \(model.convolution), "
                + "BN \(model.batchNorm ? "on" : "off"), ReLU \(model.relu ? "on" : "off"); "
                + "\(t.network.parameterCount) parameters; \(t.communicator.size) rank(s) × \(BLAS.threadCount) "
                + "thread(s); global batch \(config.globalBatch) (\(t.localBatch) per rank\(accumulation)); "
                + "peak learning rate \(config.peakLearningRate)\(learningRateNote(config)); "
                + "\(t.trainSet.count) training / \(t.validationSet.count) validation / \(t.testSet.count) test images; "
                + "\(t.stepsPerEpoch) steps per epoch; \(t.exchange.bucketCount) gradient bucket(s); "
                + "\(t.precision) GEMMs")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if let json = try? encoder.encode(config) {
            console.print("dcnet-dist: configuration \(String(decoding: json, as: UTF8.self))")
        }
        var record = RunConfig(
            run: (t.options.checkpointDirectory as NSString?)?.lastPathComponent ?? "run",
            config: try? JSONValue(encoding: config), date: ISO8601DateFormatter().string(from: Date()),
            command: t.options.commandLine, ranks: t.communicator.size, parameters: t.network.parameterCount,
            precision: t.precision.rawValue)
        // The binary does not know its source revision; scripts/experiments (and any launcher)
        // passes it in so reports can say which code produced each run.
        if let commit = ProcessInfo.processInfo.environment["DCNET_COMMIT"], !commit.isEmpty {
            record.commit = commit
        }
        try write(.config(record))
        startStep = t.progress.globalStep
        window = Window(exposedAtStart: t.timing.exposedCommunication); epoch = Window()
    }

    func stepTaken(loss: Double, accuracy: Double) {
        window.steps += 1; window.loss += loss; window.accuracy += accuracy
        epoch.steps += 1; epoch.loss += loss; epoch.accuracy += accuracy
    }

    /// The progress line and record for the steps since the last one. `slowest` is the straggler
    /// report (nil with one rank).
    func progress(_ t: Trainer, slowest: (rank: Int, host: String, excess: Double)?) throws {
        let now = MPIRuntime.wallTime(), step = t.progress.globalStep
        let rate = Double(window.steps * t.config.globalBatch) / (now - window.start)
        let perStep = (now - runStart) / Double(step - startStep)
        let eta = perStep * Double(t.config.epochs * t.stepsPerEpoch - step)
        let lr = t.schedule.rate(at: step - 1)
        let slowestNote =
            slowest.map {
                String(format: "  slowest %@ +%.1f%%", t.communicator.watchdog?.name($0.rank) ?? "", 100 * $0.excess)
            } ?? ""
        console.print(
            String(
                format: "step %6d  epoch %3d/%d  loss %.4f  acc %5.1f%%  lr %.5f  %7.1f img/s  ETA %@",
                step, t.progress.epoch + 1, t.config.epochs, window.meanLoss, 100 * window.meanAccuracy, lr, rate,
                formatDuration(eta)) + slowestNote)
        let record = ProgressRecord(
            step: step, epoch: t.progress.epoch + 1, loss: window.meanLoss, accuracy: window.meanAccuracy,
            imagesPerSecond: rate, learningRate: Double(lr), etaSeconds: eta, slowestRank: slowest?.rank,
            slowestHost: slowest?.host, slowestExcess: slowest?.excess,
            exposedCommunicationShare: (t.timing.exposedCommunication - window.exposedAtStart) / (now - window.start))
        try write(.progress(record))
        window = Window(exposedAtStart: t.timing.exposedCommunication)
    }

    /// The epoch's summary (`t.progress.epoch` already counts it), with the test evaluation that
    /// `evaluate` runs if one is due (its time is not counted in the epoch's images/s).
    func epochEnded(
        _ t: Trainer, evaluate: () throws -> (validation: Trainer.Evaluation?, test: Trainer.Evaluation)?
    ) throws {
        let seconds = MPIRuntime.wallTime() - epoch.start
        let evaluations = try evaluate()
        let e = evaluations?.test, v = evaluations?.validation
        var record = EpochRecord(
            epoch: t.progress.epoch, step: t.progress.globalStep, trainLoss: epoch.meanLoss,
            trainAccuracy: epoch.meanAccuracy, imagesPerSecond: Double(epoch.steps * t.config.globalBatch) / seconds,
            learningRate: Double(t.schedule.rate(at: t.progress.globalStep - 1)))
        if let v { record.validationLoss = v.loss; record.validationAccuracy = v.accuracy }
        if let e {
            record.testLoss = e.loss; record.testAccuracy = e.accuracy
            let validation =
                v.map {
                    String(
                        format: " | validation loss %.4f acc %.2f%% (%d images)", $0.loss, 100 * $0.accuracy, $0.count)
                } ?? ""
            console.print(
                String(
                    format: "epoch %d: train loss %.4f acc %.2f%%%@ | test loss %.4f acc %.2f%% (%d images) | %.0f s",
                    t.progress.epoch, epoch.meanLoss, 100 * epoch.meanAccuracy, validation, e.loss, 100 * e.accuracy,
                    e.count, MPIRuntime.wallTime() - epoch.start))
        }
        record.wallSeconds = MPIRuntime.wallTime() - epoch.start
        var radius: [String: Double] = [:], patchNorm: [String: Double] = [:]
        for case let layer as DecoupledConv2D in t.network.allLayers {
            guard let stats = layer.radiusStatistics else { continue }
            radius[layer.name] = stats.radius
            if stats.patchNorm.isFinite { patchNorm[layer.name] = stats.patchNorm }
        }
        if !radius.isEmpty { record.operatorRadius = radius }
        if !patchNorm.isEmpty { record.patchNorm = patchNorm }
        try write(.epoch(record))
        epoch = Window()
    }

    /// A test evaluation outside the epoch summaries (a run stopped early).
    func evaluated(_ t: Trainer, _ e: Trainer.Evaluation) throws {
        console.print(String(format: "test loss %.4f acc %.2f%% (%d images)", e.loss, 100 * e.accuracy, e.count))
        try write(
            .evaluation(EvaluationRecord(step: t.progress.globalStep, testLoss: e.loss, testAccuracy: e.accuracy)))
    }

    /// How the peak learning rate came from --lr, for the start line ("" without scaling).
    private func learningRateNote(_ config: TrainingConfig) -> String {
        guard let scaling = config.learningRateScaling, scaling != .none else { return "" }
        return " (--lr \(config.learningRate) with \(scaling.rawValue) scaling: global batch \(config.globalBatch) "
            + "/ reference \(config.referenceBatch ?? 128))"
    }
}

func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s)
    return t >= 3600
        ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}
