import DCNetData
import DCNetModels
import DCNetTraining
import Foundation
import TestSupport
import XCTest

/// `train --config FILE`: the recipes in recipes/ train as their headers say, flags on the command
/// line override a file, and a bad file is refused naming the file, the key and the value.
final class RecipeTests: XCTestCase {
    private var data: TempDir!
    private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    private var small: [String] { ["--width", "0.0625", "--epochs", "1", "--max-steps", "1", "--threads", "1"] }

    override func setUpWithError() throws {
        data = try learnableDataset(train: 20, test: 10)
    }

    private func recipe(_ name: String) -> String { root.appendingPathComponent("recipes/\(name)").path }

    /// Trains one step with `args` and returns the configuration its checkpoint stores.
    private func trainedConfig(_ args: [String]) throws -> TrainingConfig {
        let run = TempDir("recipe-run")
        let r = try runProcess(
            try dcnetDistBinary(),
            ["train", "--data", data.path, "--batch-size", "4", "--eval-every", "0", "--checkpoint-dir", run.path]
                + args + small)
        XCTAssertEqual(r.status, 0, r.stderr)
        let stored = try Checkpoint.read(run.file("ckpt-00000001.safetensors")).config
        XCTAssertTrue(r.stdout.contains("configuration {"), "the resolved configuration is not printed:\n\(r.stdout)")
        return stored
    }

    private func assertRefused(
        _ args: [String], mentions needles: [String], file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let r = try runProcess(try dcnetDistBinary(), args, timeout: 120)
        XCTAssertNotEqual(r.status, 0, "exited 0: \(args)\n\(r.stdout)", file: file, line: line)
        for needle in needles {
            XCTAssertTrue(
                r.stderr.contains(needle), "stderr does not mention \(needle):\n\(r.stderr)", file: file, line: line)
        }
    }

    func testAuthorsRecipeTrainsTheAuthorsWay() throws {
        let c = try trainedConfig(
            ["--config", recipe("authors-cifar.toml"), "--operator", "tanh", "--angular", "cos", "--learnable-radius"])
        XCTAssertEqual(c.optimizer, .adam)
        XCTAssertEqual(c.learningRate, 0.001)
        XCTAssertEqual(c.globalBatch, 4, "the command line's --batch-size overrides the recipe's 128")
        XCTAssertEqual(c.schedule, .step)
        XCTAssertEqual(c.stepMilestoneFractions, [0.47, 0.71, 0.88])
        XCTAssertEqual(c.stepMilestones, [])
        XCTAssertEqual(c.warmupEpochs, 0)
        XCTAssertEqual(c.model.labelSmoothing, 0.01)
        XCTAssertEqual(c.orthogonality, 1e-5)
        XCTAssertEqual(c.projectEvery, 100)
        XCTAssertEqual(c.weightDecay, 5e-4)
        XCTAssertFalse(c.decayDecoupledFilters)
        XCTAssertEqual(c.scaling, .authors)
        XCTAssertEqual(c.padding, .mirror)
        guard case .decoupled(let op) = c.model.convolution else { return XCTFail("not a decoupled network") }
        XCTAssertEqual(op.magnitude, .tanh)
    }

    /// The authors' baseline is the same recipe with plain convolutions: nothing to project or
    /// orthogonalise, and the stored configuration says so.
    func testBaselineUnderTheAuthorsRecipeStoresNoProjection() throws {
        let c = try trainedConfig(["--config", recipe("authors-cifar.toml"), "--operator", "baseline"])
        XCTAssertEqual(c.model.convolution, .baseline)
        XCTAssertEqual(c.projectEvery, 0)
        XCTAssertEqual(c.orthogonality, 0)
        XCTAssertEqual(c.optimizer, .adam)
    }

    func testProjectionIsOnByDefaultForDecoupledFilters() throws {
        XCTAssertEqual(try trainedConfig(["--operator", "tanh"]).projectEvery, 100)
        XCTAssertEqual(try trainedConfig(["--operator", "tanh", "--project-every", "0"]).projectEvery, 0)
        XCTAssertEqual(try trainedConfig(["--operator", "baseline"]).projectEvery, 0)
    }

    func testCommandLineOverridesTheFileAndTheBNFreeRecipeHasNoBatchNorm() throws {
        let c = try trainedConfig(["--config", recipe("authors-bn-free.toml"), "--lr", "0.002", "--padding", "zero"])
        XCTAssertEqual(c.learningRate, 0.002)
        XCTAssertNil(c.padding, "--padding zero on the command line overrides the recipe's mirror")
        XCTAssertFalse(c.model.batchNorm)
        guard case .decoupled(let op) = c.model.convolution else { return XCTFail("not a decoupled network") }
        XCTAssertEqual(op.magnitude, .linear)
        XCTAssertEqual(op.angular, .squareCosine)

        let sgd = try trainedConfig(["--config", recipe("reference-sgd.toml"), "--operator", "tanh"])
        XCTAssertEqual(sgd.optimizer, .sgd)
        XCTAssertEqual(sgd.learningRate, 0.05)
        XCTAssertEqual(sgd.schedule, .cosine)
        XCTAssertEqual(sgd.projectEvery, 0)
        XCTAssertNil(sgd.padding)
    }

    func testYAMLFileIsReadLikeTOML() throws {
        let dir = TempDir("recipe-yaml")
        dir.write("r.yaml", Array("optimizer: adam\nlr: 0.003\nstep-milestones: [\"50%\"]\nschedule: step\n".utf8))
        let c = try trainedConfig(["--config", dir.file("r.yaml")])
        XCTAssertEqual(c.optimizer, .adam)
        XCTAssertEqual(c.learningRate, 0.003)
        XCTAssertEqual(c.stepMilestoneFractions, [0.5])
    }

    /// Each bad key is named with its file and value, all of them in one message, before any data
    /// is read (the data directory does not exist), also under --check-flags.
    func testBadKeysAreNamedWithFileKeyAndValue() throws {
        let dir = TempDir("recipe-bad")
        dir.write(
            "bad.toml",
            Array("epochz = 3\nlr = \"fast\"\nno-relu = 3\nepochs = true\nconfig = \"other.toml\"\n".utf8))
        let bad = dir.file("bad.toml")
        for extra in [[], ["--check-flags"]] {
            try assertRefused(
                ["train", "--config", bad, "--data", "/nonexistent"] + extra,
                mentions: [
                    "\(bad): unknown key 'epochz'", "did you mean 'epochs'", "\(bad): key 'lr' = \"fast\"",
                    "'fast' is invalid for '--lr", "key 'no-relu' = 3", "on/off flag",
                    "key 'epochs' = true", "takes a value", "key 'config'",
                ])
        }
    }

    func testMalformedAndMissingFilesAreRefused() throws {
        let dir = TempDir("recipe-malformed")
        dir.write("syntax.toml", Array("lr = 0.001\nepochs = = 3\n".utf8))
        try assertRefused(
            ["train", "--config", dir.file("syntax.toml"), "--data", data.path],
            mentions: [dir.file("syntax.toml"), "line 2"])
        dir.write("section.toml", Array("[model]\nwidth = 0.5\n".utf8))
        try assertRefused(
            ["train", "--config", dir.file("section.toml"), "--data", data.path], mentions: ["[model] is a table"])
        dir.write("r.json", Array("{}".utf8))
        try assertRefused(
            ["train", "--config", dir.file("r.json"), "--data", data.path],
            mentions: ["r.json", ".toml, .yaml or .yml"])
        try assertRefused(
            ["train", "--config", dir.file("missing.toml"), "--data", data.path],
            mentions: ["missing.toml", "cannot read"])
        dir.write("list.yaml", Array("- lr\n- 0.1\n".utf8))
        try assertRefused(
            ["train", "--config", dir.file("list.yaml"), "--data", data.path], mentions: ["list.yaml", "mapping"])
        try assertRefused(["train", "--data", data.path, "--config"], mentions: ["--config needs a file"])
    }

    /// A conflict between settings is found on the merged flags and names the file's key.
    func testConflictsNameTheFileSetting() throws {
        let dir = TempDir("recipe-conflict")
        dir.write("c.toml", Array("operator = \"baseline\"\nweighted = \"nonlinear\"\nepochs = -2\n".utf8))
        try assertRefused(
            ["train", "--config", dir.file("c.toml"), "--data", data.path, "--check-flags"],
            mentions: [
                "--weighted needs a decoupled --operator", "(from \(dir.file("c.toml")): ",
                "weighted = \"nonlinear\"", "--epochs must be positive", "epochs = -2",
            ])
        // Given again on the command line, the file's value is not in force and is not blamed.
        let r = try runProcess(
            try dcnetDistBinary(),
            ["train", "--config", dir.file("c.toml"), "--data", data.path, "--check-flags", "--epochs", "3"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertFalse(r.stderr.contains("epochs = -2"), r.stderr)
        XCTAssertFalse(r.stderr.contains("--epochs must be positive"), r.stderr)
    }

    func testStepMilestonePercentagesAreChecked() throws {
        try assertRefused(
            ["train", "--data", data.path, "--schedule", "step", "--step-milestones", "47%,120%", "--check-flags"],
            mentions: ["--step-milestones", "120"])
        try assertRefused(
            ["train", "--data", data.path, "--schedule", "step", "--step-milestones", "47%,20", "--check-flags"],
            mentions: ["--step-milestones", "'20' is not a percentage"])
    }
}
