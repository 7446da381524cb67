import DCNetMetrics
import XCTest

@testable import DCNetReport

/// The verdict logic on small in-memory runs, without rendering or files.
final class ClaimEvaluatorTests: XCTestCase {
    private let evaluator = ClaimEvaluator(noiseMargin: 0.005, accuracyThresholds: [0.5, 0.6, 0.7])

    /// Test accuracies per epoch (1-based); training accuracy equals test accuracy unless given,
    /// so no epoch counts as lagging by accident.
    private func run(
        _ accuracies: [Double], trainAccuracies: [Double]? = nil, losses: [Double]? = nil,
        attacks: [AttackRecord] = []
    ) -> RunMetrics {
        RunMetrics(
            epochs: accuracies.enumerated().map { index, accuracy in
                EpochRecord(
                    epoch: index + 1, trainLoss: losses?[index] ?? 1.0,
                    trainAccuracy: trainAccuracies?[index] ?? accuracy, testAccuracy: accuracy)
            },
            attacks: attacks)
    }

    private func attack(_ epsilon: Double, _ accuracy: Double, method: String = "fgsm") -> AttackRecord {
        AttackRecord(
            method: method, mode: .whiteBox, epsilonPixels: epsilon, steps: 1, cleanAccuracy: 0.8,
            adversarialAccuracy: accuracy)
    }

    private func comparisons(_ result: ClaimResult) -> [Comparison] {
        guard case .comparisons(let comparisons) = result.outcome else {
            XCTFail("expected comparisons, got \(result.outcome)")
            return []
        }
        return comparisons
    }

    private func group(_ test: ClaimTest, _ runs: [String]) -> ExperimentGroup {
        ExperimentGroup(name: "g", claim: "c", runs: runs, test: test)
    }

    // MARK: - Faster convergence

    func testConvergenceVerdictFollowsTheMeanAccuracyOverCommonEpochs() throws {
        let runs = [
            "base": run([0.40, 0.50, 0.60]),
            // Same final accuracy, but higher earlier: learns faster.
            "fast": run([0.50, 0.58, 0.60]),
            "slow": run([0.30, 0.45, 0.65]),
            "same": run([0.40, 0.51, 0.60]),
        ]
        let result = evaluator.evaluate(group(.fasterConvergence, ["base", "fast", "slow", "same"]), runs: runs)
        let found = comparisons(result)
        XCTAssertEqual(found.map(\.candidate), ["fast", "slow", "same"])
        XCTAssertEqual(found.map(\.baseline), ["base", "base", "base"])
        XCTAssertEqual(
            result.verdicts, [.suggests, .suggestsAgainst, .inconclusive], "one seed each: at most suggests")

        guard case .convergence(let fast) = found[0].evidence else { return XCTFail("\(found[0].evidence)") }
        XCTAssertEqual(fast.commonEpochs, [1, 2, 3])
        XCTAssertEqual(fast.comparedEpochCount, 3)
        XCTAssertEqual(fast.meanTestAccuracy.candidate, (0.50 + 0.58 + 0.60) / 3, accuracy: 1e-12)
        XCTAssertEqual(fast.meanTestAccuracy.baseline, 0.50, accuracy: 1e-12)
        XCTAssertEqual(fast.accuracyAtLastCommonEpoch, Paired(0.60, 0.60))
        XCTAssertEqual(fast.threshold, ThresholdReached(accuracy: 0.6, epochs: Paired(3, 3)))
        XCTAssertEqual(fast.direction, .ahead)
        // The later final accuracy does not rescue the slow run: the claim is about speed.
        guard case .convergence(let slow) = found[1].evidence else { return XCTFail("\(found[1].evidence)") }
        XCTAssertEqual(slow.threshold, ThresholdReached(accuracy: 0.6, epochs: Paired(3, 3)))
    }

    func testConvergenceOnlyComparesEpochsBothRunsCompleted() throws {
        let runs = ["base": run([0.40, 0.50, 0.70]), "short": run([0.45, 0.55])]
        let result = evaluator.evaluate(group(.fasterConvergence, ["base", "short"]), runs: runs)
        guard case .convergence(let s) = comparisons(result).first?.evidence else { return XCTFail() }
        XCTAssertEqual(s.commonEpochs, [1, 2])
        // The baseline's 70% at epoch 3 is beyond the common budget.
        XCTAssertEqual(s.threshold, ThresholdReached(accuracy: 0.5, epochs: Paired(2, 2)))
        XCTAssertEqual(result.verdicts, [.suggests])
    }

    func testLaggingEpochIsLeftOutOfTheMeanAndCanDecideTheVerdict() throws {
        // Epoch 1 of "dc" was evaluated at chance while it trained at 40%: left out, "dc" is ahead;
        // counted, the baseline would be ahead.
        let runs = [
            "base": run([0.30, 0.40, 0.50]),
            "dc": run([0.10, 0.45, 0.55], trainAccuracies: [0.40, 0.45, 0.55]),
        ]
        let result = evaluator.evaluate(group(.fasterConvergence, ["base", "dc"]), runs: runs)
        guard case .convergence(let s) = comparisons(result).first?.evidence else { return XCTFail() }
        XCTAssertEqual(s.laggingEpochs, [1])
        XCTAssertEqual(s.comparedEpochCount, 2)
        XCTAssertEqual(s.meanTestAccuracy.candidate, 0.50, accuracy: 1e-12)
        XCTAssertEqual(s.meanTestAccuracy.baseline, 0.45, accuracy: 1e-12)
        XCTAssertEqual(result.verdicts, [.suggests])
    }

    func testConvergenceWithoutCommonEpochsIsNotEvaluated() {
        let runs = ["base": run([0.4]), "empty": RunMetrics()]
        let result = evaluator.evaluate(group(.fasterConvergence, ["base", "empty"]), runs: runs)
        XCTAssertEqual(comparisons(result).first?.evidence, .unavailable(.noCommonEpochs))
        XCTAssertEqual(result.verdicts, [.notEvaluated])
    }

    // MARK: - Accuracy

    func testHigherAccuracyUsesTheBestEpochAndTheNoiseMargin() throws {
        let runs = [
            "base": run([0.50, 0.60, 0.58]),
            "better": run([0.55, 0.61, 0.607]),  // best 61.0%: 1 pp ahead
            "tied": run([0.604, 0.50]),  // 0.4 pp ahead: within the margin
            "worse": run([0.40, 0.59]),
        ]
        let result = evaluator.evaluate(group(.higherAccuracy, ["base", "better", "tied", "worse"]), runs: runs)
        XCTAssertEqual(result.verdicts, [.suggests, .inconclusive, .suggestsAgainst])
        guard case .accuracy(let tied) = comparisons(result)[1].evidence else { return XCTFail() }
        XCTAssertEqual(tied.bestTestAccuracy, Paired(0.604, 0.60))
        XCTAssertEqual(tied.finalTestAccuracy, Paired(0.50, 0.58))
        XCTAssertEqual(tied.epochsCompleted, Paired(2, 3))
        XCTAssertEqual(tied.direction, .tied)
        XCTAssertTrue(tied.claimsHigher)
    }

    func testNoHigherAccuracyClaimIsSupportedByATieOrALoss() {
        let runs = ["base": run([0.60]), "tied": run([0.603]), "worse": run([0.50]), "better": run([0.62])]
        let result = evaluator.evaluate(
            group(.noHigherAccuracy, ["base", "tied", "worse", "better"]), runs: runs)
        XCTAssertEqual(result.verdicts, [.suggests, .suggests, .suggestsAgainst])
    }

    func testAccuracyWithoutTestAccuracyIsNotEvaluated() {
        let noTest = RunMetrics(epochs: [EpochRecord(epoch: 1, trainLoss: 1)])
        let result = evaluator.evaluate(
            group(.higherAccuracy, ["base", "x"]), runs: ["base": run([0.5]), "x": noTest])
        XCTAssertEqual(comparisons(result).first?.evidence, .unavailable(.noTestAccuracy))
    }

    // MARK: - Reaching an accuracy

    func testReachingAnAccuracyTestsEachCandidateOnItsOwn() throws {
        let diverged = run([0.30, 0.35], losses: [2.0, .nan])
        let runs = ["base": run([0.2]), "ok": run([0.50, 0.62, 0.61]), "low": diverged]
        let result = evaluator.evaluate(group(.reachesAccuracy(0.6), ["base", "ok", "low", "gone"]), runs: runs)
        let found = comparisons(result)
        XCTAssertEqual(found.map(\.candidate), ["ok", "low", "gone"])
        XCTAssertEqual(found.map(\.baseline), [nil, nil, nil], "an absolute claim has no comparison partner")
        XCTAssertEqual(result.verdicts, [.suggests, .suggestsAgainst, .notEvaluated])
        guard case .reach(let ok) = found[0].evidence, case .reach(let low) = found[1].evidence else {
            return XCTFail()
        }
        XCTAssertEqual(ok.firstEpochReaching, 2)
        XCTAssertEqual(ok.bestTestAccuracy, 0.62)
        XCTAssertTrue(low.diverged)
        XCTAssertNil(low.firstEpochReaching)
        XCTAssertEqual(found[2].evidence, .unavailable(.runMissing))
    }

    func testReachingAnAccuracyWithOneRunTestsThatRun() {
        let result = evaluator.evaluate(group(.reachesAccuracy(0.5), ["only"]), runs: ["only": run([0.49])])
        XCTAssertEqual(comparisons(result).map(\.candidate), ["only"])
        XCTAssertEqual(result.verdicts, [.suggestsAgainst])
    }

    // MARK: - Robustness

    func testRobustnessCountsMatchedAttackSettings() throws {
        let base = run([0.8], attacks: [attack(2, 0.40), attack(8, 0.10)])
        let runs = [
            "base": base,
            "robust": run([0.8], attacks: [attack(2, 0.45), attack(8, 0.12), attack(4, 0.9)]),
            "fragile": run([0.8], attacks: [attack(2, 0.30), attack(8, 0.102)]),
            "mixed": run([0.8], attacks: [attack(2, 0.50), attack(8, 0.05)]),
            "same": run([0.8], attacks: [attack(2, 0.401), attack(8, 0.099)]),
            "other": run([0.8], attacks: [attack(2, 0.9, method: "bim")]),
        ]
        let names = ["base", "robust", "fragile", "mixed", "same", "other"]
        let result = evaluator.evaluate(group(.moreRobust, names), runs: runs)
        XCTAssertEqual(result.verdicts, [.suggests, .suggestsAgainst, .mixed, .inconclusive, .notEvaluated])
        guard case .robustness(let robust) = comparisons(result)[0].evidence else { return XCTFail() }
        // ε = 4 has no baseline result: not matched, not counted.
        XCTAssertEqual(robust.matchedSettings, 2)
        XCTAssertEqual([robust.ahead, robust.behind, robust.tied], [2, 0, 0])
        XCTAssertEqual(robust.meanAdversarialAccuracy.candidate, 0.285, accuracy: 1e-12)
        XCTAssertEqual(robust.meanAdversarialAccuracy.baseline, 0.25, accuracy: 1e-12)
        XCTAssertEqual(comparisons(result)[4].evidence, .unavailable(.noMatchedAttacks))
    }

    func testRepeatedAttackCountsOnlyItsLatestResult() {
        let base = run([0.8], attacks: [attack(2, 0.40)])
        let rerun = run([0.8], attacks: [attack(2, 0.60), attack(2, 0.30)])
        let result = evaluator.evaluate(group(.moreRobust, ["base", "x"]), runs: ["base": base, "x": rerun])
        XCTAssertEqual(result.verdicts, [.suggestsAgainst])
    }

    // MARK: - Groups that cannot be compared

    func testGroupsWithoutAComparison() {
        XCTAssertEqual(evaluator.evaluate(group(.higherAccuracy, []), runs: [:]).outcome, .noRuns)
        XCTAssertEqual(
            evaluator.evaluate(group(.higherAccuracy, ["a"]), runs: ["a": run([0.5])]).outcome, .singleRun("a"))
        XCTAssertEqual(
            evaluator.evaluate(group(.fasterConvergence, ["ghost", "a"]), runs: ["a": run([0.5])]).outcome,
            .baselineMissing("ghost"))
        let result = evaluator.evaluate(group(.fasterConvergence, ["a", "ghost"]), runs: ["a": run([0.5])])
        XCTAssertEqual(
            comparisons(result),
            [
                Comparison(
                    candidate: "ghost", baseline: "a", verdict: .notEvaluated, evidence: .unavailable(.runMissing))
            ])
    }
}
