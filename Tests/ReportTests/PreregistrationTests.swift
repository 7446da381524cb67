import DCNetMetrics
import Foundation
import XCTest

@testable import DCNetReport

/// The pre-registered suite's report: convergence read over a window of epochs with a fixed
/// threshold, the epochs to that threshold judged on their own, robustness relative to clean
/// accuracy, and the registered comparisons listed first with their verdicts.
final class PreregistrationTests: XCTestCase {
    private let evaluator = ClaimEvaluator(noiseMargin: 0.005, accuracyThresholds: [0.5, 0.6, 0.7])

    private func metrics(_ validation: [Double], attacks: [AttackRecord] = []) -> RunMetrics {
        RunMetrics(
            epochs: validation.enumerated().map { i, v in
                var e = EpochRecord(epoch: i + 1, trainLoss: 1, trainAccuracy: v, testAccuracy: v)
                e.validationAccuracy = v
                return e
            }, attacks: attacks)
    }

    private func seeds(_ name: String, _ curves: [[Double]]) -> [Replicate] {
        curves.enumerated().map { Replicate(name: "\(name)-s\($0 + 1)", metrics: metrics($1)) }
    }

    private func decodeGroup(_ json: String) throws -> ExperimentGroup {
        try JSONDecoder().decode(ExperimentGroup.self, from: Data(json.utf8))
    }

    func testConvergenceWindowAndThresholdAreReadFromTheTest() throws {
        let g = try decodeGroup(
            #"{"name": "P2", "registration": "P2", "claim": "c", "runs": ["b", "d"], "baseline": "b","#
                + #" "test": {"kind": "faster-convergence", "epochs": 2, "threshold": 0.75}}"#)
        XCTAssertEqual(g.convergenceEpochs, 2)
        XCTAssertEqual(g.convergenceThreshold, 0.75)
        XCTAssertTrue(g.isPreregistered)
        XCTAssertEqual(g.labelledName, "P2 (pre-registered)")
        let again = try JSONDecoder().decode(ExperimentGroup.self, from: JSONEncoder().encode(g))
        XCTAssertEqual(again, g)
        for bad in [
            #""test": {"kind": "higher-accuracy", "epochs": 2}"#,
            #""test": {"kind": "faster-convergence", "epochs": 0}"#,
            #""test": {"kind": "faster-convergence", "threshold": 75}"#,
        ] {
            XCTAssertThrowsError(try decodeGroup(#"{"name": "x", "claim": "c", "runs": ["a"], "# + bad + "}"), bad)
        }
        XCTAssertEqual(
            try decodeGroup(
                #"{"name": "x", "registration": "exploratory", "claim": "c", "runs": ["a"], "test": {"kind": "higher-accuracy"}}"#
            ).labelledName, "x (exploratory)")
    }

    /// The candidate leads over epochs 1-2 only and reaches 75% an epoch earlier; over all epochs
    /// the baseline would lead. A seed that never reaches 75% counts as one epoch after its last.
    func testConvergenceOverTheWindowAndEpochsToTheThreshold() throws {
        let g = ExperimentGroup(
            name: "P2", claim: "c", runs: ["b", "d"], baseline: "b", test: .fasterConvergence, registration: "P2",
            convergenceEpochs: 2, convergenceThreshold: 0.75)
        let replicates = [
            "b": seeds("b", [[0.50, 0.70, 0.76, 0.95], [0.52, 0.70, 0.77, 0.95], [0.51, 0.69, 0.74, 0.74]]),
            "d": seeds("d", [[0.60, 0.76, 0.70, 0.70], [0.61, 0.77, 0.70, 0.70], [0.60, 0.75, 0.71, 0.71]]),
        ]
        let result = evaluator.evaluate(g, replicates: replicates)
        guard case .comparisons(let found) = result.outcome else { return XCTFail("\(result.outcome)") }
        XCTAssertEqual(found.count, 2)
        let mean = try XCTUnwrap(found[0].replicates)
        XCTAssertEqual(mean.measure, .meanValidationAccuracy)
        XCTAssertEqual(mean.comparedEpochs, [1, 2])
        XCTAssertEqual(mean.threshold, 0.75)
        XCTAssertEqual(found[0].verdict, .supported)
        let epochs = try XCTUnwrap(found[1].replicates)
        XCTAssertEqual(epochs.measure, .epochsToThreshold)
        XCTAssertEqual(epochs.values.candidate.values, [2, 2, 2])
        XCTAssertEqual(epochs.values.baseline.values, [3, 3, 5], "seed 3 never reaches 75% in its 4 epochs")
        XCTAssertEqual(found[1].verdict, .supported, "fewer epochs is the claimed direction")

        // Reversed roles: the slower side as candidate is contradicted on both quantities.
        let reversed = ExperimentGroup(
            name: "P2", claim: "c", runs: ["d", "b"], baseline: "d", test: .fasterConvergence, registration: "P2",
            convergenceEpochs: 2, convergenceThreshold: 0.75)
        XCTAssertEqual(evaluator.evaluate(reversed, replicates: replicates).verdicts, [.contradicted, .contradicted])
    }

    func testRobustnessOfRegisteredGroupsIsAlsoJudgedRelativeToCleanAccuracy() throws {
        func record(_ clean: Double, _ adversarial: Double, _ eps: Double) -> AttackRecord {
            AttackRecord(
                method: "fgsm", mode: .blackBox, source: "source-s4", epsilonPixels: eps, steps: 1,
                cleanAccuracy: clean, adversarialAccuracy: adversarial)
        }
        // The candidate keeps more accuracy in absolute terms only because it is more accurate.
        func side(_ name: String, clean: Double, kept: Double) -> [Replicate] {
            (1...3).map { k in
                let c = clean + 0.001 * Double(k)
                return Replicate(
                    name: "\(name)-s\(k)",
                    metrics: metrics([c], attacks: [record(c, c * kept, 2), record(c, c * kept * 0.5, 8)]))
            }
        }
        let replicates = ["b": side("b", clean: 0.80, kept: 0.5), "d": side("d", clean: 0.90, kept: 0.5)]
        var g = ExperimentGroup(name: "P4", claim: "c", runs: ["b", "d"], baseline: "b", test: .moreRobust)
        XCTAssertEqual(evaluator.evaluate(g, replicates: replicates).verdicts.count, 1, "older suites: absolute only")
        g.registration = "P4"
        let result = evaluator.evaluate(g, replicates: replicates)
        guard case .comparisons(let found) = result.outcome else { return XCTFail("\(result.outcome)") }
        XCTAssertEqual(
            found.map { $0.replicates?.measure }, [.meanAdversarialAccuracy, .meanAdversarialFractionOfClean])
        XCTAssertEqual(found[0].verdict, .supported)
        XCTAssertEqual(found[1].replicates!.difference, 0, accuracy: 1e-9)
        XCTAssertEqual(found[1].verdict, .inconclusive)
    }

    func testReportListsTheRegisteredComparisonsFirst() throws {
        let suite = try ExperimentSuite.decode(
            Data(
                #"""
                {"groups": [
                  {"name": "Extra", "registration": "exploratory", "claim": "c", "runs": ["b", "x"], "test": {"kind": "higher-accuracy"}},
                  {"name": "P1 accuracy", "registration": "P1", "claim": "c", "runs": ["b", "d"], "test": {"kind": "higher-accuracy"}}],
                 "preregistration": {"registered": "before the runs", "rule": "2 SE",
                   "comparisons": [{"id": "P1", "name": "accuracy", "quantity": "final test accuracy",
                     "direction": "d > b", "sides": ["d", "b"], "seeds": [1, 2]},
                     {"id": "P9", "name": "never run", "quantity": "q", "direction": "?", "sides": [], "seeds": []}]}}
                """#.utf8), path: "suite.json")
        let p = try XCTUnwrap(suite.preregistration)
        XCTAssertEqual(p.comparisons.map(\.id), ["P1", "P9"])
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("prereg-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        for (run, accuracy) in [("b", 0.70), ("d", 0.75), ("x", 0.60)] {
            let line = #"{"kind":"epoch","epoch":1,"train_loss":1,"train_accuracy":0.7,"test_accuracy":\#(accuracy)}"#
            try writeRecords([line], run: run, in: dir)
        }
        var report = ExperimentReport(suiteDirectory: dir, groups: suite.groups)
        report.preregistration = p
        let markdown = report.render().markdown
        let order = [
            "## Pre-registered comparisons", "## Verdicts at a glance", "## P1 accuracy (pre-registered)",
            "## Extra (exploratory)",
        ].map { markdown.range(of: $0)?.lowerBound }
        XCTAssertFalse(order.contains(nil), markdown)
        XCTAssertEqual(order.map { $0! }, order.map { $0! }.sorted(), "sections out of order:\n\(markdown)")
        assertContains(markdown, "| P1 | accuracy | final test accuracy | d > b | 1, 2 | d vs b")
        assertContains(markdown, "suggests (1 seed)")
        assertContains(markdown, "| P9 | never run | q | ? |  | no group answers it |")
    }
}
