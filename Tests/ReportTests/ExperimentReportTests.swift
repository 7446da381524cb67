import DCNetMetrics
import Foundation
import XCTest

@testable import DCNetReport

#if canImport(FoundationXML)
import FoundationXML
#endif

final class ExperimentReportTests: SuiteTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        // Test accuracies per epoch; losses fall linearly.
        try writeRun(
            "baseline", accuracies: [0.40, 0.55, 0.62, 0.71, 0.70], imagesPerSecond: [200, 240, 250, 245, 260])
        try writeRun(
            "tanh-cos", accuracies: [0.45, 0.61, 0.68, 0.72, 0.74], imagesPerSecond: [180, 230, 240, 235, 250])
        try writeRun("linear", accuracies: [0.30, 0.45, 0.52, 0.58, 0.60], imagesPerSecond: [220, 220, 220, 220, 220])
        try writeRun(
            "tanh-cos-nobn", accuracies: [0.35, 0.50, 0.63], imagesPerSecond: [200, 200, 200], plannedEpochs: 5)
        // Started but no epoch finished yet.
        try writeRecords(
            [configLine("sphere-cos"), #"{"kind":"progress","step":50,"loss":2.1}"#], run: "sphere-cos", in: suite)
        // Attacks: tanh-cos is more robust under white-box FGSM.
        try writeAttacks("baseline", [attack(eps: 2, clean: 0.70, adv: 0.30), attack(eps: 8, clean: 0.70, adv: 0.10)])
        try writeAttacks(
            "tanh-cos",
            [
                attack(eps: 2, clean: 0.74, adv: 0.41), attack(eps: 8, clean: 0.74, adv: 0.20),
                attack(eps: 8, clean: 0.74, adv: 0.35, source: "baseline"),
            ])
    }

    private var groups: [ExperimentGroup] {
        [
            ExperimentGroup(
                name: "Operators & convergence", claim: "Decoupled operators converge faster than the inner product.",
                runs: ["baseline", "tanh-cos", "linear", "sphere-cos", "never-started"], test: .fasterConvergence),
            ExperimentGroup(
                name: "Without batch norm", claim: "DCNets train without batch normalization.",
                runs: ["baseline", "tanh-cos-nobn"], test: .reachesAccuracy(0.6)),
            ExperimentGroup(
                name: "Robustness", claim: "DCNets are more robust to adversarial attacks.",
                runs: ["baseline", "tanh-cos"], test: .moreRobust),
        ]
    }

    private func makeReport() -> ExperimentReport {
        var report = ExperimentReport(suiteDirectory: suite, groups: groups)
        report.budget = "5 epochs, 2 ranks"
        report.command = "scripts/suite.sh --epochs 5"
        report.generatedAt = Date(timeIntervalSince1970: 1_700_000_000)
        return report
    }

    func testReportHasTablesWithCorrectNumbers() throws {
        let output = try makeReport().write()
        let markdown = try String(contentsOf: output.reportFile, encoding: .utf8)
        XCTAssertEqual(output.reportFile.lastPathComponent, "report.md")
        XCTAssertEqual(markdown, output.markdown)

        // Header.
        assertContains(markdown, "- **Generated:** 2023-11-14T22:13:20Z")
        assertContains(markdown, "- **Commit:** `abc123` (all runs)")
        XCTAssertTrue(markdown.contains("- **Command:** `scripts/suite.sh --epochs 5`"))
        XCTAssertTrue(markdown.contains("5 epochs, 2 ranks"))

        // Run | Epochs | Final | Best (epoch) | to 50% | to 60% | to 70% | images/s | final train loss
        assertContains(
            markdown,
            "| Run | Epochs | Final test acc. | Best test acc. (epoch) | Epochs to 50% | Epochs to 60% | Epochs to"
                + " 70% | Images/s (median) | Final train loss |")
        assertContains(markdown, "| baseline (baseline) | 5 | 70.0% | 71.0% (4) | 2 | 3 | 4 | 245.0 | 1.000 |")
        assertContains(markdown, "| tanh-cos | 5 | 74.0% | 74.0% (5) | 2 | 2 | 4 | 235.0 | 1.000 |")
        assertContains(markdown, "| linear | 5 | 60.0% | 60.0% (5) | 3 | 5 | — | 220.0 | 1.000 |")
        assertContains(markdown, "| tanh-cos-nobn | 3 of 5 | 63.0% | 63.0% (3) | 2 | 3 | — | 200.0 | 1.400 |")
    }

    func testMissingRunsAreListedNotFatal() throws {
        let output = try makeReport().write()
        XCTAssertEqual(output.missingRuns.map(\.run), ["sphere-cos", "never-started"])
        assertContains(output.markdown, "- `sphere-cos`: no completed epoch yet, at step 50")
        assertContains(output.markdown, "- `never-started`: no metrics.jsonl yet")
        assertContains(output.markdown, "| never-started | missing: no metrics.jsonl yet |")
    }

    func testPlotsAreWrittenLinkedAndValid() throws {
        let output = try makeReport().write()
        let expected = [
            "operators-convergence-accuracy.svg", "operators-convergence-loss.svg",
            "without-batch-norm-accuracy.svg", "without-batch-norm-loss.svg",
            "robustness-accuracy.svg", "robustness-loss.svg", "attack-fgsm.svg",
        ]
        XCTAssertEqual(Set(output.plotFiles.map(\.lastPathComponent)), Set(expected))

        // Every image link in report.md points to an existing, well-formed SVG.
        let links = imageLinks(in: output.markdown)
        XCTAssertEqual(Set(links), Set(expected))
        for link in links {
            let url = suite.appendingPathComponent(link)
            XCTAssertTrue(FileManager.default.fileExists(atPath: url.path), link)
            let collector = try XCTUnwrap(parseSVG(try String(contentsOf: url, encoding: .utf8)))
            XCTAssertFalse(collector.elements(withClass: "series-line").isEmpty, link)
        }
        let accuracy = try XCTUnwrap(
            parseSVG(try String(contentsOf: suite.appendingPathComponent(expected[0]), encoding: .utf8)))
        XCTAssertEqual(
            accuracy.elements(withClass: "series-line").compactMap { $0.attributes["data-series"] },
            ["baseline", "tanh-cos", "linear"], "missing runs have no series")
        XCTAssertEqual(accuracy.elements(withClass: "title").first?.text, "Operators & convergence: test accuracy")
    }

    func testVerdictsFollowTheNumbers() throws {
        let markdown = try makeReport().write().markdown
        assertContains(
            markdown,
            "- tanh-cos vs baseline after 5 epochs: 74.0% vs 70.0% test accuracy; mean over epochs 1–5: 64.0% vs"
                + " 59.6%; "
                + "epochs to reach 70%: 4 vs 4; mean training loss 1.400 vs 1.400 — suggests the paper's claim of"
                + " faster convergence at this budget (single seed: no standard error, so not a test).")
        assertContains(
            markdown,
            "- linear vs baseline after 5 epochs: 60.0% vs 70.0% test accuracy; mean over epochs 1–5: 49.0% vs"
                + " 59.6%; "
                + "epochs to reach 70%: not reached vs 4; mean training loss 1.400 vs 1.400 — suggests the paper's"
                + " claim of faster convergence does not hold at this budget: the baseline learns faster (single seed")
        assertContains(markdown, "- sphere-cos vs baseline: cannot be evaluated yet, `sphere-cos` is missing.")
        assertContains(
            markdown,
            "- tanh-cos-nobn: best test accuracy 63.0%, reaches 60% (first at epoch 3) — suggests the paper's"
                + " claim (single seed: not a test).")
        assertContains(
            markdown,
            "- tanh-cos vs baseline under 2 matched attack settings: mean adversarial accuracy 30.5% vs 20.0%; "
                + "ahead in 2, behind in 0, tied in 0 — suggests the paper's claim of stronger robustness "
                + "(single seed: no standard error, so not a test).")
    }

    /// A first epoch evaluated at chance while training accuracy was well above it (running
    /// statistics not settled) is left out of the convergence mean, and the report says so.
    func testEpochsWhoseEvaluationLagsTrainingAreLeftOut() throws {
        try writeRun("lag-base", accuracies: [0.30, 0.40, 0.50], imagesPerSecond: [1, 1, 1], plannedEpochs: 3)
        try writeRun(
            "lag-dc", accuracies: [0.10, 0.45, 0.55], imagesPerSecond: [1, 1, 1], plannedEpochs: 3,
            trainAccuracies: [0.25, 0.45, 0.55])
        let report = ExperimentReport(
            suiteDirectory: suite,
            groups: [
                ExperimentGroup(name: "lag", claim: "c", runs: ["lag-base", "lag-dc"], test: .fasterConvergence)
            ])
        let markdown = try report.write().markdown
        assertContains(
            markdown,
            "- lag-dc vs lag-base after 3 epochs: 55.0% vs 50.0% test accuracy; mean over the 2 comparable epochs:"
                + " 50.0% vs 45.0%; "
                + "epochs to reach 50%: 3 vs 3; mean training loss 1.600 vs 1.600 (epoch 1 left out of the mean: ")
        assertContains(markdown, "suggests the paper's claim of faster convergence at this budget")
        // Without the lagging epoch excluded the mean would favour the baseline (36.7% vs 43.3%).
    }

    /// A claim that a variant does *not* help is supported when it is not more accurate.
    func testNoHigherAccuracyClaim() throws {
        try writeRun("plain", accuracies: [0.40, 0.50], imagesPerSecond: [1, 1], plannedEpochs: 2)
        try writeRun("worse", accuracies: [0.30, 0.45], imagesPerSecond: [1, 1], plannedEpochs: 2)
        try writeRun("better", accuracies: [0.40, 0.56], imagesPerSecond: [1, 1], plannedEpochs: 2)
        let json = #"[{"name":"w","claim":"c","runs":["plain","worse","better"],"test":{"kind":"no-higher-accuracy"}}]"#
        let groups = try JSONDecoder().decode([ExperimentGroup].self, from: Data(json.utf8))
        XCTAssertEqual(groups.first?.test, .noHigherAccuracy)
        let markdown = try ExperimentReport(suiteDirectory: suite, groups: groups).write().markdown
        assertContains(
            markdown,
            "- worse vs plain: best test accuracy 45.0% vs 50.0% (final 45.0% vs 50.0%) — suggests the paper's"
                + " claim that it does not help (single seed: no standard error, so not a test).")
        assertContains(
            markdown,
            "- better vs plain: best test accuracy 56.0% vs 50.0% (final 56.0% vs 50.0%) — suggests the paper's claim"
                + " that it does not help does not hold: it is more accurate (single seed: no standard error, so"
                + " not a test).")
    }

    func testClaimWithinNoiseIsNotSupported() throws {
        try writeRun("same-a", accuracies: [0.50, 0.60], imagesPerSecond: [1, 1])
        try writeRun("same-b", accuracies: [0.501, 0.602], imagesPerSecond: [1, 1])
        var report = ExperimentReport(
            suiteDirectory: suite,
            groups: [
                ExperimentGroup(
                    name: "tie", claim: "b is more accurate", runs: ["same-a", "same-b"], test: .higherAccuracy),
                ExperimentGroup(
                    name: "low", claim: "b trains", runs: ["same-a", "same-b"], test: .reachesAccuracy(0.7)),
            ])
        report.outputDirectory = suite.appendingPathComponent("out")
        let output = try report.write()
        XCTAssertTrue(output.reportFile.path.hasSuffix("out/report.md"))
        assertContains(output.markdown, "the paper's claim of higher accuracy is not supported")
        assertContains(
            output.markdown,
            "- same-b: best test accuracy 60.2% after 2 of 5 epochs, below 70% — the paper's claim does not hold at"
                + " this budget (single seed: not a test).")
    }

    func testMissingBaselineAndAttackTable() throws {
        var report = makeReport()
        report.groups = [ExperimentGroup(name: "g", claim: "c", runs: ["ghost", "tanh-cos"], test: .fasterConvergence)]
        let markdown = try report.write().markdown
        assertContains(markdown, "Cannot be evaluated yet: the baseline run `ghost` is missing.")
        assertContains(markdown, "### FGSM, white-box")
        assertContains(markdown, "| Model | Clean | ε = 2 | ε = 8 |")
        assertContains(markdown, "| tanh-cos | 74.0% | 41.0% | 20.0% |")
        assertContains(markdown, "| tanh-cos ← baseline | 74.0% | 35.0% |")
    }

    func testGroupsLoadFromJSON() throws {
        let json =
            #"[{"name":"ops","claim":"faster","runs":["a","b"],"test":{"kind":"reaches-accuracy","accuracy":0.6}}]"#
        let url = suite.appendingPathComponent("groups.json")
        try Data(json.utf8).write(to: url)
        let loaded = try ExperimentGroup.load(from: url)
        XCTAssertEqual(
            loaded, [ExperimentGroup(name: "ops", claim: "faster", runs: ["a", "b"], test: .reachesAccuracy(0.6))])
        XCTAssertEqual(loaded[0].baselineRun, "a")
    }

    // MARK: - Helpers

    private func configLine(_ run: String, plannedEpochs: Int = 5) -> String {
        #"{"kind":"config","run":"\#(run)","config":{"epochs":\#(plannedEpochs),"model":"cnn9","#
            + #""operator":"\#(run)"},"commit":"abc123","date":"2025-01-01T00:00:00Z","#
            + #""command":"dcnet-dist train --model cnn9"}"#
    }

    private func writeRun(
        _ run: String, accuracies: [Double], imagesPerSecond: [Double], plannedEpochs: Int = 5,
        trainAccuracies: [Double]? = nil
    ) throws {
        var lines = [configLine(run, plannedEpochs: plannedEpochs)]
        for (index, accuracy) in accuracies.enumerated() {
            let epoch = index + 1
            lines.append(#"{"kind":"progress","step":\#(epoch * 100 - 50),"epoch":\#(epoch),"loss":2.0}"#)
            let record = EpochRecord(
                epoch: epoch, step: epoch * 100, trainLoss: 2.0 - 0.2 * Double(epoch),
                trainAccuracy: trainAccuracies?[index] ?? accuracy, testLoss: 1.5, testAccuracy: accuracy,
                imagesPerSecond: imagesPerSecond[index], wallSeconds: 100, learningRate: 0.1)
            lines.append(try MetricsRecord.epoch(record).jsonLine())
        }
        try writeRecords(lines, run: run, in: suite)
    }

    /// One FGSM attack record: white-box, or black-box from `source`.
    func attack(eps: Int, clean: Double, adv: Double, source: String? = nil) -> String {
        let mode = source.map { #""mode":"black-box","source":"\#($0)""# } ?? #""mode":"white-box""#
        return #"{"kind":"attack","method":"fgsm",\#(mode),"epsilon_pixels":\#(eps),"steps":1,"#
            + #""clean_accuracy":\#(clean),"adversarial_accuracy":\#(adv),"images":10000}"#
    }

    private func writeAttacks(_ run: String, _ lines: [String]) throws {
        try writeRecords(lines, run: run, in: suite, file: MetricsLog.attacksFileName)
    }

    private func imageLinks(in markdown: String) -> [String] {
        markdown.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("!["), let open = line.lastIndex(of: "("), line.hasSuffix(")") else { return nil }
            return String(line[line.index(after: open)..<line.index(before: line.endIndex)])
        }
    }
}
