import DCNetData
import DCNetLayers
import DCNetMetrics
import DCNetModels
import Foundation
import MPI
import TestSupport
import XCTest

@testable import DCNetTraining

/// Short real training runs on a learnable synthetic set (single process).
final class TrainingRunTests: XCTestCase {
    private func assertLearns(
        _ model: ModelConfig, steps: Int, lr: Float, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let data = try learnableDataset()
        let trainer = try Trainer(
            config: tinyConfig(model, batch: 16, lr: lr),
            options: tinyOptions(data: data.path, maxSteps: steps))
        XCTAssertEqual(try trainer.run(), .stoppedAtMaxSteps, file: file, line: line)
        let losses = trainer.stepLosses
        XCTAssertEqual(losses.count, steps, file: file, line: line)
        XCTAssertTrue(losses.allSatisfy(\.isFinite), "non-finite loss in \(losses)", file: file, line: line)
        let first = losses[0], last5 = losses.suffix(5).reduce(0, +) / 5
        XCTAssertGreaterThan(first, 1.5, "an untrained 10-class net should start near ln 10", file: file, line: line)
        XCTAssertLessThan(
            last5, 0.8, "four classes: ln 4 ≈ 1.39 is the loss of knowing only the class frequencies; losses \(losses)",
            file: file, line: line)
        XCTAssertLessThan(
            last5, 0.6 * first,
            "\(model.convolution): loss \(first) → mean of last 5 \(last5) after \(steps) steps; losses \(losses)",
            file: file, line: line)
    }

    func testBaselineConvLossDecreases() throws {
        try assertLearns(tinyModel(.baseline), steps: 30, lr: 0.05)
    }

    func testTanhConvLossDecreases() throws {
        try assertLearns(tinyModel(tanhConv), steps: 30, lr: 0.05)
    }

    /// Winograd F(4×4, 3×3) and im2col + GEMM are the same convolution up to rounding, so short
    /// training runs under each follow the same loss curve. Training amplifies the rounding
    /// differences step by step, so the tolerance starts tight (a wrong forward or backward shows in
    /// the first steps) and doubles per step up to 0.64%.
    func testWinogradAndGEMMTrainAlike() throws {
        let data = try learnableDataset()
        var curves: [[Float]] = []
        for algorithm in ConvolutionAlgorithm.allCases {
            var options = tinyOptions(data: data.path, maxSteps: 12)
            options.convolutionAlgorithm = algorithm
            let trainer = try Trainer(config: tinyConfig(tinyModel(tanhConv), batch: 16, lr: 0.05), options: options)
            _ = try trainer.run()
            curves.append(trainer.stepLosses)
        }
        XCTAssertEqual(curves[0].count, 12)
        XCTAssertNotEqual(curves[0], curves[1], "both runs used the same algorithm")
        for (step, (a, b)) in zip(curves[0], curves[1]).enumerated() {
            let tolerance = 1e-4 * Float(1 << min(step, 6))
            XCTAssertEqual(
                a, b, accuracy: tolerance * max(1, abs(b)), "step \(step): winograd \(curves[0]) vs gemm \(curves[1])")
        }
    }

    /// After a short run, evaluation mode (BatchNorm running statistics, the bias-corrected running
    /// mean patch norm of the decoupled layers) classifies a training subset as well as training
    /// mode (batch statistics) does.
    func testEvaluationModeAgreesWithTrainingMode() throws {
        let data = try learnableDataset(train: 240, test: 32)
        var config = tinyConfig(tinyModel(tanhConv), batch: 16, lr: 0.05)
        config.augment = false
        let trainer = try Trainer(config: config, options: tinyOptions(data: data.path, maxSteps: 45))
        _ = try trainer.run()
        let subset = trainer.trainSet.prefix(96)
        // Evaluation mode first: training-mode forward passes update the running statistics.
        let eval = try Trainer.evaluate(
            network: trainer.network, dataset: subset, scaling: config.scaling.scaling,
            communicator: trainer.communicator, images: trainer.images, labels: trainer.labels)
        XCTAssertEqual(eval.count, 96)
        let evalHelper = accuracy(of: trainer.network, on: subset, mode: .evaluation)
        XCTAssertEqual(
            eval.accuracy, evalHelper, accuracy: 1e-12, "Trainer.evaluate and a plain evaluation-mode pass differ")
        let train = accuracy(of: trainer.network, on: subset, mode: .training)
        XCTAssertGreaterThan(
            train, 0.6, "the run did not learn (training-mode accuracy \(train)); the comparison would be vacuous")
        XCTAssertEqual(
            eval.accuracy, train, accuracy: 0.02,
            "evaluation-mode accuracy \(eval.accuracy) vs training-mode \(train) on the same 96 training images")
    }

    /// A run's metrics file read back through DCNetMetrics: every kind the trainer writes is there,
    /// with the numbers the trainer computed. The config line also carries the source revision a
    /// launcher passes in DCNET_COMMIT (scripts/experiments does), so reports can name the code.
    /// `--validation N`: N training images held out by a fixed choice (independent of the run's
    /// seed and of the rank count), evaluated after each epoch and recorded apart from the test set.
    func testValidationSplitIsHeldOutAndEvaluated() throws {
        let split = DataOrder.validationSplit(count: 40, size: 8)
        XCTAssertEqual(split.validation.count, 8)
        XCTAssertEqual(split.train.count, 32)
        XCTAssertEqual(Set(split.train + split.validation), Set(0..<40), "the split loses or repeats images")
        XCTAssertEqual(split.validation, split.validation.sorted())
        XCTAssertEqual(DataOrder.validationSplit(count: 40, size: 8).validation, split.validation)
        XCTAssertNotEqual(split.validation, Array(0..<8), "the held-out images are the first ones, not a seeded choice")

        let data = try learnableDataset(train: 40, test: 8)
        let out = TempDir("validation")
        var options = tinyOptions(data: data.path, maxSteps: 100)
        options.metricsPath = out.file("metrics.jsonl")
        options.evalEvery = 1
        var config = tinyConfig(tinyModel(), batch: 8, epochs: 2)
        config.validation = 8
        config.seed = 5
        let trainer = try Trainer(config: config, options: options)
        XCTAssertEqual(trainer.trainSet.count, 32)
        XCTAssertEqual(trainer.validationSet.count, 8)
        let all = try CIFAR.load(directory: data.path, variant: .cifar10, split: .train)
        XCTAssertEqual(trainer.validationSet.pixels, all.subset(indices: split.validation).pixels)
        XCTAssertEqual(try trainer.run(), .completed)
        let epochs = try MetricsReader.read(path: out.file("metrics.jsonl")).records.compactMap {
            if case .epoch(let e) = $0 { e } else { nil }
        }
        XCTAssertEqual(epochs.count, 2)
        let last = try XCTUnwrap(epochs.last)
        XCTAssertEqual(last.validationAccuracy, try trainer.evaluate(trainer.validationSet).accuracy)
        XCTAssertEqual(last.testAccuracy, try trainer.evaluate().accuracy)
        XCTAssertNotNil(epochs.first?.validationLoss)

        config.validation = 40
        XCTAssertThrowsError(try Trainer(config: config, options: options)) {
            XCTAssertTrue("\($0)".contains("--validation 40"), "\($0)")
        }
    }

    func testMetricsRoundTripThroughTheReader() throws {
        let data = try learnableDataset(train: 32, test: 8)
        let out = TempDir("metrics")
        // 4 steps per epoch: epoch 1 ends at step 4, and --max-steps 6 stops inside epoch 2.
        var options = tinyOptions(data: data.path, maxSteps: 6)
        options.metricsPath = out.file("metrics.jsonl")
        options.logEvery = 1
        options.evalEvery = 1
        setenv("DCNET_COMMIT", "abc1234", 1)
        defer { unsetenv("DCNET_COMMIT") }
        let config = tinyConfig(tinyModel(), batch: 8, epochs: 3)
        let trainer = try Trainer(config: config, options: options)
        XCTAssertEqual(try trainer.run(), .stoppedAtMaxSteps)
        let losses = trainer.stepLosses.map(Double.init)
        XCTAssertEqual(losses.count, 6)

        let file = try MetricsReader.read(path: out.file("metrics.jsonl"))
        XCTAssertTrue(file.warnings.isEmpty, "\(file.warnings)")
        XCTAssertEqual(
            file.records.map(\.kind),
            ["config"] + Array(repeating: "progress", count: 4) + ["epoch"] + ["progress", "progress", "evaluation"])

        guard case .config(let run) = file.records[0] else { return XCTFail("no config record first") }
        XCTAssertEqual(run.commit, "abc1234")
        XCTAssertEqual(run.ranks, 1)
        XCTAssertEqual(run.parameters, trainer.network.parameterCount)
        XCTAssertEqual(run.command, options.commandLine)
        XCTAssertEqual(run.config, try JSONValue(encoding: config))
        XCTAssertEqual(run.config?["epochs"], .number(3))

        let progress = file.records.compactMap { if case .progress(let p) = $0 { p } else { nil } }
        XCTAssertEqual(progress.map(\.step), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(progress.map(\.epoch), [1, 1, 1, 1, 2, 2])
        for (record, loss) in zip(progress, losses) {
            // stepLosses keeps Floats; the metrics keep the Double the step computed.
            XCTAssertEqual(record.loss ?? .nan, loss, accuracy: 1e-6 * max(1, loss))
            XCTAssertNotNil(record.accuracy)
            XCTAssertEqual(record.learningRate ?? 0, Double(config.learningRate), accuracy: 1e-9)
            XCTAssertNil(record.slowestRank, "one rank has no straggler")
        }

        let epochs = file.records.compactMap { if case .epoch(let e) = $0 { e } else { nil } }
        XCTAssertEqual(epochs.count, 1)
        XCTAssertEqual(epochs[0].epoch, 1)
        XCTAssertEqual(epochs[0].step, 4)
        XCTAssertEqual(epochs[0].trainLoss ?? .nan, losses.prefix(4).reduce(0, +) / 4, accuracy: 1e-6)
        XCTAssertNotNil(epochs[0].testAccuracy)
        XCTAssertNotNil(epochs[0].wallSeconds)

        guard case .evaluation(let evaluation) = file.records.last else { return XCTFail("no evaluation record last") }
        let final = try trainer.evaluate()
        XCTAssertEqual(evaluation, EvaluationRecord(step: 6, testLoss: final.loss, testAccuracy: final.accuracy))
    }
}
