import DCNetMetrics
import XCTest

@testable import DCNetReport

/// Verdicts over several seeds: the mean difference against twice its two-sample standard error.
final class SeedVerdictTests: XCTestCase {
    private let evaluator = ClaimEvaluator(noiseMargin: 0.005, accuracyThresholds: [0.5, 0.6, 0.7])

    /// One seed: test (and, when given, validation) accuracy per epoch, 1-based.
    private func seed(_ name: String, _ test: [Double], validation: [Double]? = nil) -> Replicate {
        Replicate(
            name: name,
            metrics: RunMetrics(
                epochs: test.enumerated().map { index, accuracy in
                    var record = EpochRecord(
                        epoch: index + 1, trainLoss: 1, trainAccuracy: max(accuracy, validation?[index] ?? 0),
                        testAccuracy: accuracy)
                    record.validationAccuracy = validation?[index]
                    return record
                }))
    }

    private func seeds(_ setting: String, finals: [Double]) -> [Replicate] {
        finals.enumerated().map { index, final in seed("\(setting)-s\(index + 1)", [final - 0.1, final]) }
    }

    private func group(_ test: ClaimTest) -> ExperimentGroup {
        ExperimentGroup(name: "g", claim: "c", runs: ["base", "dc"], test: test)
    }

    private func only(_ result: ClaimResult) throws -> Comparison {
        try singleComparison(result)
    }

    func testSupportedWhenTheMeanDifferenceExceedsTwoStandardErrors() throws {
        // Means 0.70 vs 0.65, sd 0.01 each: SE = sqrt(2 · 0.0001 / 3) = 0.0082, 2 SE = 0.016 < 0.05.
        let replicates = [
            "base": seeds("base", finals: [0.64, 0.65, 0.66]), "dc": seeds("dc", finals: [0.69, 0.70, 0.71]),
        ]
        let comparison = try only(evaluator.evaluate(group(.higherAccuracy), replicates: replicates))
        XCTAssertEqual(comparison.verdict, .supported)
        let r = try XCTUnwrap(comparison.replicates)
        XCTAssertEqual(r.measure, .bestTestAccuracy)
        XCTAssertEqual(r.values.candidate.runs, ["dc-s1", "dc-s2", "dc-s3"])
        XCTAssertEqual(r.values.candidate.values, [0.69, 0.70, 0.71])
        XCTAssertEqual(r.values.candidate.mean, 0.70, accuracy: 1e-12)
        XCTAssertEqual(r.values.candidate.standardDeviation ?? 0, 0.01, accuracy: 1e-12)
        XCTAssertEqual(r.difference, 0.05, accuracy: 1e-12)
        XCTAssertEqual(r.standardError ?? 0, (2 * 0.0001 / 3).squareRoot(), accuracy: 1e-12)
        XCTAssertFalse(r.isSingleSeed)
    }

    func testContradictedWhenTheBaselineIsAheadBeyondTwoStandardErrors() throws {
        let replicates = [
            "base": seeds("base", finals: [0.70, 0.71, 0.72]), "dc": seeds("dc", finals: [0.60, 0.62, 0.61]),
        ]
        XCTAssertEqual(
            try only(evaluator.evaluate(group(.higherAccuracy), replicates: replicates)).verdict, .contradicted)
        // "Does not help" is then supported: the candidate is not more accurate.
        XCTAssertEqual(
            try only(evaluator.evaluate(group(.noHigherAccuracy), replicates: replicates)).verdict, .supported)
    }

    func testInconclusiveWhenTheDifferenceIsWithinTwoStandardErrors() throws {
        // Mean difference 2 pp, far beyond the single-seed margin of 0.5 pp, but the seeds spread by
        // 3 pp: SE = sqrt(0.0009/3 + 0.0009/3) = 0.0245, 2 SE = 4.9 pp.
        let replicates = [
            "base": seeds("base", finals: [0.62, 0.65, 0.68]), "dc": seeds("dc", finals: [0.64, 0.67, 0.70]),
        ]
        let comparison = try only(evaluator.evaluate(group(.higherAccuracy), replicates: replicates))
        XCTAssertEqual(comparison.verdict, .inconclusive)
        XCTAssertEqual(comparison.replicates?.difference ?? 0, 0.02, accuracy: 1e-12)
    }

    func testASingleSeedOnEitherSideOnlySuggests() throws {
        // Far ahead of a three-seed baseline, but one seed has no spread to test against.
        let replicates = ["base": seeds("base", finals: [0.60, 0.61, 0.62]), "dc": seeds("dc", finals: [0.80])]
        let comparison = try only(evaluator.evaluate(group(.higherAccuracy), replicates: replicates))
        XCTAssertEqual(comparison.verdict, .suggests)
        XCTAssertEqual(comparison.replicates?.isSingleSeed, true)
        XCTAssertNil(comparison.replicates?.standardError)
        let behind = ["base": seeds("base", finals: [0.60, 0.61, 0.62]), "dc": seeds("dc", finals: [0.40])]
        XCTAssertEqual(
            try only(evaluator.evaluate(group(.higherAccuracy), replicates: behind)).verdict, .suggestsAgainst)
        let tied = ["base": seeds("base", finals: [0.60]), "dc": seeds("dc", finals: [0.602])]
        XCTAssertEqual(try only(evaluator.evaluate(group(.higherAccuracy), replicates: tied)).verdict, .inconclusive)
    }

    func testConvergenceIsJudgedOnValidationAccuracyWhenRecorded() throws {
        // On the test set the candidate looks faster; on the validation images, which the verdict
        // uses, it is slower in every seed.
        func replicates(_ setting: String, test: [Double], validation: [Double], count: Int) -> [Replicate] {
            (1...count).map { s in
                let shift = Double(s - 2) * 0.005
                return seed(
                    "\(setting)-s\(s)", test.map { $0 + shift }, validation: validation.map { $0 + shift })
            }
        }
        let all = [
            "base": replicates("base", test: [0.40, 0.50, 0.60], validation: [0.50, 0.60, 0.70], count: 3),
            "dc": replicates("dc", test: [0.50, 0.60, 0.62], validation: [0.40, 0.50, 0.62], count: 3),
        ]
        let comparison = try only(evaluator.evaluate(group(.fasterConvergence), replicates: all))
        XCTAssertEqual(comparison.verdict, .contradicted)
        let r = try XCTUnwrap(comparison.replicates)
        XCTAssertEqual(r.measure, .meanValidationAccuracy)
        XCTAssertEqual(r.comparedEpochs, [1, 2, 3])
        XCTAssertEqual(r.values.baseline.mean, 0.60, accuracy: 1e-12)
        XCTAssertEqual(r.values.candidate.mean, (0.40 + 0.50 + 0.62) / 3, accuracy: 1e-12)
        // Epochs to reach the highest threshold any seed reached (70%), per seed.
        XCTAssertEqual(r.threshold, 0.7)
        XCTAssertEqual(r.epochsToReach, Paired([nil, nil, nil], [nil, 3, 3]))
        guard case .convergence(let first) = comparison.evidence else { return XCTFail("\(comparison.evidence)") }
        XCTAssertTrue(first.usesValidation)
        XCTAssertEqual(first.accuracyAtLastCommonEpoch.candidate ?? 0, 0.615, accuracy: 1e-12)
    }

    func testConvergenceFallsBackToTestAccuracyWithoutValidationRecords() throws {
        let all = [
            "base": [seed("base-s1", [0.40, 0.50]), seed("base-s2", [0.41, 0.51])],
            "dc": [seed("dc-s1", [0.50, 0.60]), seed("dc-s2", [0.51, 0.61], validation: [0.1, 0.1])],
        ]
        let comparison = try only(evaluator.evaluate(group(.fasterConvergence), replicates: all))
        XCTAssertEqual(comparison.replicates?.measure, .meanTestAccuracy, "one seed without validation: test for all")
        XCTAssertEqual(comparison.verdict, .supported)
    }

    func testReportGroupsSeedDirectoriesAndPrintsMeanAndSpread() throws {
        let suite = FileManager.default.temporaryDirectory.appendingPathComponent("seeds-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: suite) }
        func write(_ run: String, _ accuracies: [Double]) throws {
            let epochs = accuracies.enumerated().map { index, accuracy in
                EpochRecord(epoch: index + 1, trainLoss: 1, trainAccuracy: accuracy, testAccuracy: accuracy)
            }
            try writeRecords(epochLines(epochs), run: run, in: suite)
        }
        for (s, final) in [0.64, 0.65, 0.66].enumerated() { try write("base-s\(s + 1)", [0.5, final]) }
        for (s, final) in [0.69, 0.70, 0.71].enumerated() { try write("dc-s\(s + 1)", [0.5, final]) }
        let report = ExperimentReport(
            suiteDirectory: suite,
            groups: [ExperimentGroup(name: "g", claim: "c", runs: ["base", "dc"], test: .higherAccuracy)])
        let markdown = report.render().markdown
        assertContains(
            markdown,
            "- dc vs base over 3 vs 3 seeds, best test accuracy: 70.0% ± 1.0 vs 65.0% ± 1.0 (mean ± sd; per seed: "
                + "69.0, 70.0, 71.0 vs 64.0, 65.0, 66.0); difference +5.0 pp (standard error 0.8 pp) — supports "
                + "the paper's claim of higher accuracy (beyond 2 standard errors).")
        assertContains(markdown, "| dc-s3 |")
        assertContains(markdown, "| base-s1 (baseline) |")
    }
}
