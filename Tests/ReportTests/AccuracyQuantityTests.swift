import DCNetMetrics
import Foundation
import TestSupport
import XCTest

@testable import DCNetReport

/// Which accuracy the accuracy claims read (the final model's with validation records, the best
/// epoch's without), and the clean-accuracy bar of a group.
final class AccuracyQuantityTests: XCTestCase {
    private let evaluator = ClaimEvaluator(noiseMargin: 0.005, accuracyThresholds: [0.5, 0.6, 0.7])

    /// Epoch records with these test accuracies (1-based epochs) and, when given, validation ones.
    private func metrics(test: [Double], validation: [Double]? = nil) -> RunMetrics {
        RunMetrics(
            epochs: test.enumerated().map { index, accuracy in
                var record = EpochRecord(epoch: index + 1, trainLoss: 1, trainAccuracy: 0.9, testAccuracy: accuracy)
                record.validationAccuracy = validation?[index]
                return record
            })
    }

    /// Three seeds whose test accuracies are `test` shifted by -0.005, 0, +0.005.
    private func seeds(_ setting: String, test: [Double], validation: [Double]?) -> [Replicate] {
        (1...3).map { s in
            let shift = Double(s - 2) * 0.005
            return Replicate(
                name: "\(setting)-s\(s)",
                metrics: metrics(test: test.map { $0 + shift }, validation: validation?.map { $0 + shift }))
        }
    }

    private func comparison(_ test: ClaimTest, _ replicates: [String: [Replicate]]) throws -> Comparison {
        let result = evaluator.evaluate(
            ExperimentGroup(name: "g", claim: "c", runs: ["base", "dc"], test: test), replicates: replicates)
        return try singleComparison(result)
    }

    /// The candidate's best test epoch (80%, epoch 1) is not its final one (70%); the baseline ends at
    /// its best (75%). Picked on the test set the candidate wins; on the final model it loses.
    func testValidationRecordsSwitchTheVerdictToTheFinalModel() throws {
        let withValidation = [
            "base": seeds("base", test: [0.72, 0.75], validation: [0.70, 0.74]),
            "dc": seeds("dc", test: [0.80, 0.70], validation: [0.72, 0.71]),
        ]
        let final = try comparison(.higherAccuracy, withValidation)
        XCTAssertEqual(final.verdict, .contradicted)
        let r = try XCTUnwrap(final.replicates)
        XCTAssertEqual(r.measure, .finalTestAccuracy)
        XCTAssertEqual(r.values.candidate.values[1], 0.70, accuracy: 1e-12)
        XCTAssertEqual(r.values.baseline.mean, 0.75, accuracy: 1e-12)
        guard case .accuracy(let s) = final.evidence else { return XCTFail("\(final.evidence)") }
        XCTAssertTrue(s.usesFinalTestAccuracy)
        XCTAssertEqual(s.judged.candidate, 0.695, accuracy: 1e-12)
        XCTAssertEqual(s.bestTestAccuracy.candidate, 0.795, accuracy: 1e-12)
        // "Does not help" reads the same quantity.
        XCTAssertEqual(try comparison(.noHigherAccuracy, withValidation).verdict, .supported)

        // The same test accuracies without validation records: the best epoch decides (older suites).
        let withoutValidation = [
            "base": seeds("base", test: [0.72, 0.75], validation: nil),
            "dc": seeds("dc", test: [0.80, 0.70], validation: nil),
        ]
        let best = try comparison(.higherAccuracy, withoutValidation)
        XCTAssertEqual(best.verdict, .supported)
        XCTAssertEqual(best.replicates?.measure, .bestTestAccuracy)
        XCTAssertEqual(best.replicates?.values.candidate.mean ?? 0, 0.80, accuracy: 1e-12)
        guard case .accuracy(let b) = best.evidence else { return XCTFail("\(best.evidence)") }
        XCTAssertFalse(b.usesFinalTestAccuracy)

        // One seed without validation records: the best epoch for every run of the comparison.
        var mixed = withValidation
        mixed["base"]![2] = Replicate(name: "base-s3", metrics: metrics(test: [0.725, 0.755]))
        XCTAssertEqual(try comparison(.higherAccuracy, mixed).replicates?.measure, .bestTestAccuracy)
    }

    func testReachingAnAccuracyReadsTheFinalModelWithValidation() throws {
        let group = ExperimentGroup(name: "g", claim: "c", runs: ["dc"], test: .reachesAccuracy(0.75))
        func verdict(_ validation: [Double]?) -> [Verdict] {
            evaluator.evaluate(group, replicates: ["dc": seeds("dc", test: [0.80, 0.70], validation: validation)])
                .verdicts
        }
        XCTAssertEqual(verdict(nil), [.supported], "best epochs 79.5–80.5% reach 75%")
        XCTAssertEqual(verdict([0.7, 0.7]), [.contradicted], "final models 69.5–70.5% do not")
    }

    // MARK: - In the report

    private func writeRun(_ suite: URL, _ run: String, test: [Double], validation: [Double]?) throws {
        try writeRecords(epochLines(metrics(test: test, validation: validation).epochs), run: run, in: suite)
    }

    func testReportSaysWhichAccuracyTheVerdictReads() throws {
        let directory = TempDir("final")
        let suite = URL(fileURLWithPath: directory.path)
        try writeRun(suite, "base", test: [0.72, 0.75], validation: [0.70, 0.74])
        try writeRun(suite, "dc", test: [0.80, 0.70], validation: [0.72, 0.71])
        let report = ExperimentReport(
            suiteDirectory: suite,
            groups: [ExperimentGroup(name: "acc", claim: "c", runs: ["base", "dc"], test: .higherAccuracy)])
        let markdown = try report.write().markdown
        assertContains(
            markdown,
            "| Run | Epochs | Final test acc. | Best val. acc. (epoch) | Test acc. at that epoch | "
                + "Epochs to 50% (val.) |")
        assertContains(markdown, "| dc | 2 | 70.0% | 72.0% (1) | 80.0% | 1 | 1 | 1 |")
        assertContains(markdown, "_Verdict quantity: the final model's test accuracy (“Final test acc.”).")
        assertContains(
            markdown,
            "- dc vs base: final test accuracy 70.0% vs 75.0% (best over epochs 80.0% vs 75.0%, not used: it "
                + "would pick on the test set) — suggests the paper's claim of higher accuracy does not hold: the "
                + "baseline is more accurate (single seed")

        // An older suite without validation records keeps the best epoch, and says so.
        try writeRun(suite, "base", test: [0.72, 0.75], validation: nil)
        try writeRun(suite, "dc", test: [0.80, 0.70], validation: nil)
        let old = try report.write().markdown
        assertContains(old, "| dc | 2 | 70.0% | 80.0% (1) | 1 | 1 | 1 |")
        assertContains(old, "_Verdict quantity: the best test accuracy over epochs (“Best test acc.”).")
        assertContains(old, "- dc vs base: best test accuracy 80.0% vs 75.0% (final 70.0% vs 75.0%) — suggests")
    }

    // MARK: - Clean-accuracy bar

    func testMinCleanAccuracyListsEveryRunAndFlagsTheVerdict() throws {
        let json = #"""
            {"groups": [{"name": "Adversarial robustness", "claim": "c", "runs": ["base", "dc"], "baseline": "base",
              "test": {"kind": "higher-accuracy"}, "min_clean_accuracy": 0.8}],
             "runs": [{"name": "base", "seeds": [1, 2]}, {"name": "dc", "seeds": [1, 2]}]}
            """#
        let suiteDefinition = try ExperimentSuite.decode(Data(json.utf8), path: "suite.json")
        XCTAssertEqual(suiteDefinition.groups.first?.minCleanAccuracy, 0.8)
        let directory = TempDir("clean")
        let suite = URL(fileURLWithPath: directory.path)
        try writeRun(suite, "base-s1", test: [0.70, 0.85], validation: nil)
        try writeRun(suite, "base-s2", test: [0.70, 0.83 - 0.03], validation: nil)  // 0.7999999999999999: at the bar
        try writeRun(suite, "dc-s1", test: [0.70, 0.88], validation: nil)
        try writeRun(suite, "dc-s2", test: [0.81, 0.7996], validation: nil)  // best above, final below the bar
        var report = ExperimentReport(suiteDirectory: suite, groups: suiteDefinition.groups)
        report.replicates = suiteDefinition.replicates
        let markdown = try report.write().markdown
        assertContains(
            markdown,
            "**Models that work:** this claim is only meaningful on models with a clean test accuracy of at least "
                + "80% (the final model's test accuracy):\n\n"
                + "- base-s1: final clean test accuracy 85.0% — meets the 80% bar.\n"
                + "- base-s2: final clean test accuracy 80.0% — meets the 80% bar.\n"
                + "- dc-s1: final clean test accuracy 88.0% — meets the 80% bar.\n"
                + "- dc-s2: final clean test accuracy 79.96% — **below the 80% bar**.\n")
        assertContains(
            markdown,
            " **Flag:** `dc-s2` is below the 80% clean-accuracy bar: the verdict stands, but this claim is only "
                + "meaningful on models that work.")
        let result = evaluator.evaluate(
            suiteDefinition.groups[0],
            replicates: [
                "base": [Replicate(name: "base-s1", metrics: metrics(test: [0.85]))],
                "dc": [Replicate(name: "dc-s1", metrics: metrics(test: [0.81]))],
            ])
        XCTAssertEqual(result.cleanAccuracy?.runsBelowBar, [])
        XCTAssertFalse(VerdictText(noiseMargin: 0.005).lines(for: result)[0].contains("Flag"))

        // Without the field: no line, no flag.
        report.groups[0].minCleanAccuracy = nil
        let plain = try report.write().markdown
        XCTAssertFalse(plain.contains("Models that work"))
        XCTAssertFalse(plain.contains("**Flag:**"))
    }

    func testMinCleanAccuracyMustBeAFraction() {
        let json = #"[{"name":"g","claim":"c","runs":["a"],"test":{"kind":"more-robust"},"min_clean_accuracy":80}]"#
        XCTAssertThrowsError(try ExperimentSuite.decode(Data(json.utf8), path: "g.json")) { error in
            XCTAssertTrue("\(error)".contains("min_clean_accuracy must be a fraction"), "\(error)")
        }
    }
}
