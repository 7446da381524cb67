import DCNetMetrics
import Foundation
import TestSupport
import XCTest

@testable import DCNetReport

final class MetricsLogTests: XCTestCase {
    /// An epoch record with its test accuracy, as one line.
    func epoch(_ n: Int, _ accuracy: Double) -> String {
        #"{"kind":"epoch","epoch":\#(n),"test_accuracy":\#(accuracy)}"# + "\n"
    }

    private let config =
        #"{"kind":"config","run":"tanh-cos","config":{"epochs":3,"model":"cnn9","lr":0.1},"commit":"abc123","#
        + #""date":"2025-01-01T00:00:00Z","command":"dcnet-dist train --operator tanh"}"#

    func testReadsAllKindsAndSkipsUnknownOnes() throws {
        let text =
            [
                config,
                #"{"kind":"progress","step":120,"epoch":1,"loss":1.93,"accuracy":0.31,"images_per_s":210.5,"#
                    + #""lr":0.05,"eta_s":300}"#,
                #"{"kind":"epoch","epoch":1,"step":391,"train_loss":1.6,"train_accuracy":0.40,"test_loss":1.46,"#
                    + #""test_accuracy":0.48,"images_per_s":240.1,"wall_s":139.1,"lr":0.05}"#,
                #"{"kind":"histogram","values":[1,2,3]}"#,
                #"{"kind":"attack","method":"fgsm","mode":"white-box","epsilon_pixels":8,"steps":1,"#
                    + #""clean_accuracy":0.80,"adversarial_accuracy":0.12,"images":10000}"#,
            ].joined(separator: "\n") + "\n"
        let metrics = try MetricsLog.parse(Data(text.utf8), fileName: "m.jsonl")
        XCTAssertEqual(metrics.config?.run, "tanh-cos")
        XCTAssertEqual(metrics.config?.commit, "abc123")
        XCTAssertEqual(metrics.config?.config?["epochs"], .number(3))
        XCTAssertEqual(
            metrics.progress,
            [
                ProgressRecord(
                    step: 120, epoch: 1, loss: 1.93, accuracy: 0.31,
                    imagesPerSecond: 210.5, learningRate: 0.05, etaSeconds: 300)
            ])
        XCTAssertEqual(metrics.epochs.count, 1)
        XCTAssertEqual(metrics.epochs[0].testAccuracy, 0.48)
        XCTAssertEqual(metrics.epochs[0].wallSeconds, 139.1)
        XCTAssertEqual(metrics.attacks.first?.mode, .whiteBox)
        XCTAssertEqual(metrics.attacks.first?.epsilonPixels, 8)
        XCTAssertTrue(metrics.warnings.isEmpty)
    }

    func testTruncatedLastLineIsSkippedWithAWarning() throws {
        let text =
            config + "\n"
            + #"{"kind":"epoch","epoch":1,"test_accuracy":0.48,"train_loss":1.6}"# + "\n"
            + #"{"kind":"epoch","epoch":2,"test_acc"#
        let url = try temporaryFile(text)
        let metrics = try MetricsLog.read(path: url.path)
        XCTAssertEqual(metrics.epochs.map(\.epoch), [1])
        XCTAssertEqual(metrics.warnings.count, 1)
        XCTAssertTrue(metrics.warnings[0].contains(":3:"), metrics.warnings[0])
    }

    func testMalformedMiddleLineNamesFileAndLine() throws {
        let text =
            config + "\n"
            + epoch(1, 0.48)
            + #"{"kind":"epoch","epoch":2,,"test_accuracy":0.5}"# + "\n"
            + epoch(3, 0.55)
        let url = try temporaryFile(text)
        XCTAssertThrowsError(try MetricsLog.read(path: url.path)) { error in
            guard case MetricsLogError.malformedLine(let file, let line, _, _) = error else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(file, url.path)
            XCTAssertEqual(line, 3)
            XCTAssertTrue("\(error)".contains("\(url.path):3:"), "\(error)")
        }
    }

    func testWrongFieldTypeIsReportedByName() {
        let text = config + "\n" + #"{"kind":"epoch","epoch":"one"}"# + "\n"
        XCTAssertThrowsError(try MetricsLog.parse(Data(text.utf8), fileName: "run/metrics.jsonl")) { error in
            let message = "\(error)"
            assertContains(message, "run/metrics.jsonl:2")
            assertContains(message, "epoch")
        }
        let missing = #"{"kind":"attack","method":"fgsm","mode":"white-box","epsilon_pixels":8}"# + "\n"
        XCTAssertThrowsError(try MetricsLog.parse(Data(missing.utf8), fileName: "a.jsonl")) { error in
            XCTAssertTrue("\(error)".contains("adversarial_accuracy"), "\(error)")
        }
    }

    func testCompleteLastLineThatIsMalformedIsAnError() {
        let text = config + "\n" + #"{"kind":"epoch","epoch":1,"test_acc"# + "\n"
        XCTAssertThrowsError(try MetricsLog.parse(Data(text.utf8), fileName: "m.jsonl"))
    }

    func testResumeReplacesReRunEpochsAndRecoversTheCutRecord() throws {
        // Killed while writing epoch 3; resumed from the epoch-2 checkpoint, appending to the file.
        let text =
            config + "\n"
            + epoch(1, 0.40)
            + epoch(2, 0.50)
            + #"{"kind":"progress","step":700,"loss":1.1}"# + "\n"
            + #"{"kind":"epoch","epoch":3,"test_acc"# + config.replacingOccurrences(of: "abc123", with: "def456") + "\n"
            + #"{"kind":"progress","step":600,"loss":1.2}"# + "\n"
            + epoch(2, 0.52)
            + epoch(3, 0.60)
        let metrics = try MetricsLog.parse(Data(text.utf8), fileName: "m.jsonl")
        XCTAssertEqual(metrics.epochs.map(\.epoch), [1, 2, 3])
        XCTAssertEqual(metrics.epochs.map(\.testAccuracy), [0.40, 0.52, 0.60])
        XCTAssertEqual(metrics.progress.map(\.step), [600])
        XCTAssertEqual(metrics.resumedConfigs.map(\.commit), ["def456"])
        XCTAssertEqual(metrics.latestConfig?.commit, "def456")
        XCTAssertEqual(metrics.warnings.count, 1)
    }

    func testNullAndNonFiniteLosses() throws {
        let text = #"{"kind":"epoch","epoch":1,"train_loss":"NaN","test_loss":null,"test_accuracy":0.1}"# + "\n"
        let metrics = try MetricsLog.parse(Data(text.utf8), fileName: "m.jsonl")
        XCTAssertEqual(metrics.epochs[0].trainLoss?.isNaN, true)
        XCTAssertNil(metrics.epochs[0].testLoss)
        XCTAssertTrue(RunSummary(metrics).diverged)
    }

    func testTrailingNULPaddingAfterACrash() throws {
        var data = Data((config + "\n" + epoch(1, 0.4)).utf8)
        data.append(contentsOf: [0, 0, 0, 0])
        XCTAssertEqual(try MetricsLog.parse(data, fileName: "m.jsonl").epochs.count, 1)
    }

    func testEncodedLinesReadBack() throws {
        let epoch = EpochRecord(
            epoch: 4, step: 1564, trainLoss: 0.9, trainAccuracy: 0.7, testLoss: 1.0,
            testAccuracy: 0.66, imagesPerSecond: 250, wallSeconds: 140, learningRate: 0.1)
        let attack = AttackRecord(
            method: "pgd", mode: .blackBox, source: "baseline", epsilonPixels: 4, steps: 7,
            cleanAccuracy: 0.8, adversarialAccuracy: 0.3, images: 10000)
        let text =
            try [MetricsRecord.config(RunConfig(run: "r", commit: "c")), .epoch(epoch), .attack(attack)]
            .map { try $0.jsonLine() + "\n" }.joined()
        let metrics = try MetricsLog.parse(Data(text.utf8), fileName: "m.jsonl")
        XCTAssertEqual(metrics.config?.run, "r")
        XCTAssertEqual(metrics.epochs, [epoch])
        XCTAssertEqual(metrics.attacks, [attack])
    }

    /// The trainer writes an `evaluation` record when --max-steps stops it between epochs; the
    /// report reads it as the run's final test accuracy.
    func testEvaluationRecordIsKeptAndIsTheFinalAccuracy() throws {
        let text =
            config + "\n"
            + #"{"kind":"epoch","epoch":1,"step":100,"test_accuracy":0.40}"# + "\n"
            + #"{"kind":"evaluation","step":130,"test_loss":1.2,"test_accuracy":0.45}"# + "\n"
        let metrics = try MetricsLog.parse(Data(text.utf8), fileName: "m.jsonl")
        XCTAssertEqual(metrics.evaluations, [EvaluationRecord(step: 130, testLoss: 1.2, testAccuracy: 0.45)])
        let summary = RunSummary(metrics)
        XCTAssertEqual(summary.finalTestAccuracy, 0.45)
        XCTAssertEqual(summary.bestTestAccuracy, 0.40, "the best accuracy stays the best evaluated epoch")

        // Stopped exactly at the end of an epoch: the evaluation repeats that epoch's.
        let atEpochEnd =
            config + "\n" + #"{"kind":"epoch","epoch":1,"step":100,"test_accuracy":0.40}"# + "\n"
            + #"{"kind":"evaluation","step":100,"test_accuracy":0.41}"# + "\n"
        let ended = RunSummary(try MetricsLog.parse(Data(atEpochEnd.utf8), fileName: "m.jsonl"))
        XCTAssertNil(ended.finalEvaluation)
        XCTAssertEqual(ended.finalTestAccuracy, 0.40)
    }

    func testMissingFileIsAnUnreadableError() {
        XCTAssertThrowsError(try MetricsLog.read(path: "/nonexistent/metrics.jsonl")) { error in
            guard case MetricsLogError.unreadable(let file, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "/nonexistent/metrics.jsonl")
        }
    }

    private func temporaryFile(_ text: String) throws -> URL {
        let directory = TempDir("metrics")
        directory.write("metrics.jsonl", Array(text.utf8))
        addTeardownBlock { _ = directory }  // kept until the test ends
        return URL(fileURLWithPath: directory.file("metrics.jsonl"))
    }
}
