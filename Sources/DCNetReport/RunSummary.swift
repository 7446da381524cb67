import DCNetMetrics
import Foundation

/// The numbers a report table shows for one run, computed from its epoch records.
public struct RunSummary: Sendable, Equatable {
    public let epochsCompleted: Int
    /// Epochs the run was configured for (`config.epochs`), when the config says so.
    public let epochsPlanned: Int?
    /// The test accuracy of the state the run ended in: its last epoch's, or that of the evaluation
    /// written when `--max-steps` stopped it after that epoch.
    public let finalTestAccuracy: Double?
    /// That evaluation, when the run stopped between epochs.
    public let finalEvaluation: EvaluationRecord?
    public let bestTestAccuracy: Double?
    public let bestEpoch: Int?
    /// Median over epochs: robust to the slow first epoch (warm-up, page faults) and to an epoch
    /// that shared its node with another job.
    public let medianImagesPerSecond: Double?
    public let finalTrainLoss: Double?
    /// True if a loss went NaN or infinite: the run diverged.
    public let diverged: Bool
    /// Fewer epochs than configured, not diverged and not stopped early with a final evaluation: a
    /// run still in progress (or interrupted), whose numbers are not yet its result.
    public var isInProgress: Bool {
        guard let planned = epochsPlanned else { return false }
        return epochsCompleted < planned && !diverged && finalEvaluation == nil
    }

    public init(_ metrics: RunMetrics) {
        let epochs = metrics.epochs
        epochsCompleted = epochs.count
        // The stored configuration is untyped: 1e308 or NaN epochs is no count (and Int() of it traps).
        epochsPlanned = (metrics.latestConfig?.config?["epochs"]?.doubleValue).flatMap {
            Int(exactly: $0.rounded(.towardZero))
        }
        // An evaluation at the step of the last epoch (stopped exactly at its end) adds nothing.
        finalEvaluation = metrics.evaluations.last.flatMap { evaluation in
            evaluation.step > (epochs.last?.step ?? (epochs.isEmpty ? -1 : Int.max)) ? evaluation : nil
        }
        finalTestAccuracy = finalEvaluation?.testAccuracy ?? epochs.last?.testAccuracy
        let best = epochs.filter { $0.testAccuracy?.isFinite == true }
            .max { $0.testAccuracy! < $1.testAccuracy! }
        bestTestAccuracy = best?.testAccuracy
        bestEpoch = best?.epoch
        medianImagesPerSecond = RunSummary.median(epochs.compactMap(\.imagesPerSecond).filter(\.isFinite))
        finalTrainLoss = epochs.last?.trainLoss
        diverged =
            epochs.contains {
                ($0.trainLoss.map { !$0.isFinite } ?? false) || ($0.testLoss.map { !$0.isFinite } ?? false)
            }
            || metrics.evaluations.contains { $0.testLoss.map { !$0.isFinite } ?? false }
            || metrics.progress.contains { $0.loss.map { !$0.isFinite } ?? false }
        self.epochs = epochs
    }

    private let epochs: [EpochRecord]

    /// First epoch whose test accuracy is at least `accuracy`, or nil if never.
    public func epochToReach(_ accuracy: Double, withinEpochs limit: Int? = nil) -> Int? {
        epochs.first { record in
            (record.testAccuracy ?? -1) >= accuracy && record.epoch <= (limit ?? Int.max)
        }?.epoch
    }

    /// True when every epoch record carries a validation accuracy (the run used `--validation`).
    public var hasValidation: Bool { !epochs.isEmpty && epochs.allSatisfy { $0.validationAccuracy != nil } }

    /// The accuracy claims' quantity: the final model's test accuracy when `final` (the compared runs
    /// have validation records, so the test set chooses nothing), else the best over epochs.
    public func judgedTestAccuracy(final: Bool) -> Double? {
        final ? finalTestAccuracy.flatMap { $0.isFinite ? $0 : nil } : bestTestAccuracy
    }

    /// The epoch of the highest validation accuracy (the first of equals), with it and the test
    /// accuracy of that epoch: what a selection on the validation images would pick.
    public var bestByValidation: (epoch: Int, validationAccuracy: Double, testAccuracy: Double?)? {
        var best: EpochRecord?
        for record in epochs {
            guard let v = record.validationAccuracy, v.isFinite else { continue }
            if v > (best?.validationAccuracy ?? -.infinity) { best = record }
        }
        return best.map { ($0.epoch, $0.validationAccuracy!, $0.testAccuracy) }
    }

    /// The accuracy a learning curve is read from: validation when `validation`, else test.
    public func curveAccuracy(atEpoch epoch: Int, validation: Bool) -> Double? {
        let record = epochs.first { $0.epoch == epoch }
        return validation ? record?.validationAccuracy : record?.testAccuracy
    }

    /// First epoch whose curve accuracy (validation or test) is at least `accuracy`.
    public func epochToReach(_ accuracy: Double, withinEpochs limit: Int?, validation: Bool) -> Int? {
        epochs.first { record in
            ((validation ? record.validationAccuracy : record.testAccuracy) ?? -1) >= accuracy
                && record.epoch <= (limit ?? Int.max)
        }?.epoch
    }

    /// Test accuracy recorded at `epoch`.
    public func testAccuracy(atEpoch epoch: Int) -> Double? {
        epochs.first { $0.epoch == epoch }?.testAccuracy
    }

    /// Training accuracy and loss recorded at `epoch` (measured in training mode during the epoch).
    public func trainAccuracy(atEpoch epoch: Int) -> Double? {
        epochs.first { $0.epoch == epoch }?.trainAccuracy
    }
    public func trainLoss(atEpoch epoch: Int) -> Double? {
        epochs.first { $0.epoch == epoch }?.trainLoss
    }

    /// True when the test accuracy of `epoch` is below 60% of the training accuracy of the same
    /// epoch. Early in a run that is the signature of evaluation-mode running statistics
    /// (BatchNorm's running variance starts at 1, and decoupled layers' outputs have a variance of
    /// 1e-4–1e-2 at first) that a few dozen steps have not yet moved to the data: the test number
    /// then says nothing about how far the network has learned.
    public func evaluationLagsTraining(atEpoch epoch: Int, validation: Bool = false) -> Bool {
        guard let train = trainAccuracy(atEpoch: epoch),
            let test = curveAccuracy(atEpoch: epoch, validation: validation),
            train.isFinite, test.isFinite
        else { return false }
        return test < 0.6 * train
    }

    public var epochNumbers: [Int] { epochs.map(\.epoch) }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
