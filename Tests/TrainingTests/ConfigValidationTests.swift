import DCNetLayers
import DCNetModels
import DCNetTraining
import Foundation
import XCTest

/// Each rule of the configuration's validation: a configuration that breaks it, and only it, gives
/// one problem naming the flag (and the value where there is one).
final class ConfigValidationTests: XCTestCase {
    private let valid = tinyConfig(tinyModel(tanhConv))

    private func assertOneProblem(
        _ change: (inout TrainingConfig) -> Void, mentions needles: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        var config = valid
        change(&config)
        let problems = config.problems(ranks: 1)
        XCTAssertEqual(problems.count, 1, "\(problems)", file: file, line: line)
        for needle in needles {
            XCTAssertTrue(
                problems.first?.contains(needle) ?? false, "\(problems) lacks \(needle)", file: file, line: line)
        }
    }

    private func assertOneProblem(
        _ op: DecoupledOperator, mentions needles: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        assertOneProblem({ $0.model.convolution = .decoupled(op) }, mentions: needles, file: file, line: line)
    }

    func testValidConfigurationsHaveNoProblems() {
        XCTAssertEqual(valid.problems(ranks: 1), [])
        XCTAssertEqual(tinyConfig(tinyModel(.baseline)).problems(ranks: 2), [])
        let sphere = DecoupledOperator(magnitude: .sphere, radius: .relative(decay: 0.9))
        XCTAssertEqual(ModelConfig(architecture: .resnet32, convolution: .decoupled(sphere)).problems(), [])
    }

    func testTrainingFields() {
        assertOneProblem({ $0.epochs = 0 }, mentions: ["--epochs", "0"])
        assertOneProblem({ $0.globalBatch = -2 }, mentions: ["--batch-size", "-2"])
        assertOneProblem({ $0.accumulation = 0 }, mentions: ["--accumulate", "0"])
        assertOneProblem({ $0.referenceBatch = 0 }, mentions: ["--reference-batch", "0"])
        assertOneProblem({ $0.learningRate = 0 }, mentions: ["--lr", "0"])
        assertOneProblem({ $0.weightDecay = -1 }, mentions: ["--weight-decay", "-1"])
        assertOneProblem({ $0.momentum = 1.5 }, mentions: ["--momentum", "1.5"])
        assertOneProblem({ $0.warmupEpochs = -1 }, mentions: ["--warmup-epochs", "-1"])
        assertOneProblem({ $0.gradientClipNorm = 0 }, mentions: ["--clip-norm", "0"])
        assertOneProblem({ $0.projectEvery = -3 }, mentions: ["--project-every", "-3"])
        assertOneProblem({ $0.orthogonality = -1 }, mentions: ["--orthogonality", "-1"])
        assertOneProblem({ $0.stepMilestones = [5, 0] }, mentions: ["--step-milestones", "0"])
        assertOneProblem(
            {
                $0.weightedGradients = true; $0.model.convolution = .baseline
            },
            mentions: ["--weighted-gradients", "baseline"])
    }

    /// A checkpoint's configuration written before --weighted-gradients existed (no key) still
    /// decodes, as off; the flag off is not written, so such configurations stay as they were.
    func testWeightedGradientsIsOptionalInTheStoredConfiguration() throws {
        var config = valid
        config.weightedGradients = true
        XCTAssertEqual(config.problems(ranks: 1), [])
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as! [String: Any]
        XCTAssertEqual(json["weightedGradients"] as? Bool, true)
        json.removeValue(forKey: "weightedGradients")
        let old = try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertNil(old.weightedGradients)
        XCTAssertFalse(String(decoding: try JSONEncoder().encode(valid), as: UTF8.self).contains("weightedGradients"))
    }

    /// The rank-dependent rule is left out of the rank-free check the command line makes before MPI starts.
    func testBatchDividesByRanksOnlyWithRanks() {
        var config = valid
        config.globalBatch = 15
        XCTAssertEqual(config.problems(), [])
        XCTAssertEqual(config.problems(ranks: 1), [])
        let problems = config.problems(ranks: 2)
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems.first?.contains("--batch-size 15") ?? false, "\(problems)")
    }

    func testModelFields() {
        assertOneProblem({ $0.model.widths = [4, 0, 8] }, mentions: ["--width"])
        assertOneProblem({ $0.model.labelSmoothing = 1 }, mentions: ["--label-smoothing", "1"])
        assertOneProblem({ $0.model.labelSmoothing = -0.1 }, mentions: ["--label-smoothing", "-0.1"])
    }

    func testOperatorValues() {
        assertOneProblem(DecoupledOperator(magnitude: .tanh, alpha: 0), mentions: ["--alpha", "0"])
        assertOneProblem(DecoupledOperator(magnitude: .segmented(beta: -1)), mentions: ["--beta", "-1"])
        assertOneProblem(DecoupledOperator(magnitude: .tanh, sharpness: -0.5), mentions: ["--sharpness", "-0.5"])
        assertOneProblem(
            DecoupledOperator(magnitude: .tanh, radius: .learnable(decay: 1)), mentions: ["--radius-decay", "1"])
        assertOneProblem(
            DecoupledOperator(magnitude: .tanh, radius: .relative(decay: 0)), mentions: ["--radius-decay", "0"])
        assertOneProblem(DecoupledOperator(magnitude: .ball, radius: .fixed(-2)), mentions: ["--radius", "-2"])
    }

    func testOperatorCombinations() {
        assertOneProblem(
            DecoupledOperator(magnitude: .tanh, weighting: .linear, radius: .relative(decay: 0.9)),
            mentions: ["--weighted linear", "--operator linear"])
        assertOneProblem(
            DecoupledOperator(magnitude: .ball, weighting: .nonlinear), mentions: ["--weighted nonlinear", "tanh"])
        assertOneProblem(
            DecoupledOperator(magnitude: .sphere, weighting: .separable), mentions: ["--weighted separable", "tanh"])
        assertOneProblem(
            DecoupledOperator(magnitude: .sphere, radius: .learnable(decay: 0.9)),
            mentions: ["--operator sphere", "no operator radius"])
        assertOneProblem(
            DecoupledOperator(magnitude: .linear, weighting: .linear, radius: .fixed(1)),
            mentions: ["--operator linear", "--weighted linear", "no operator radius"])
        assertOneProblem(
            DecoupledOperator(magnitude: .tanh, angular: .cosine, learnableSharpness: true),
            mentions: ["--learnable-sharpness", "--angular sigmoid"])
        // The default relative radius goes unused without complaint.
        XCTAssertEqual(DecoupledOperator(magnitude: .sphere, radius: .relative(decay: 0.9)).problems(), [])
        XCTAssertEqual(
            DecoupledOperator(magnitude: .tanh, angular: .sigmoid, learnableSharpness: true).problems(), [])
    }

    func testRunOptions() {
        var options = RunOptions(dataDirectory: "/data")
        XCTAssertEqual(options.problems(), [])
        options.evalLimit = 0
        XCTAssertEqual(options.problems(), ["--eval-limit must be positive (got 0)"])
    }
}
