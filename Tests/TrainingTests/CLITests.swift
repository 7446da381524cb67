import DCNetData
import DCNetFormats
import DCNetLayers
import DCNetMetrics
import DCNetModels
import DCNetReport
import DCNetTraining
import Foundation
import TestSupport
import XCTest

/// The built `dcnet-dist` refuses bad arguments and bad data with a non-zero exit and a message
/// that names the flag, value or file.
final class CLITests: XCTestCase {
    private func binary() throws -> String { try dcnetDistBinary() }

    private var goodData: TempDir!
    override func setUpWithError() throws {
        goodData = try learnableDataset(train: 20, test: 10)
    }

    private func assertRejected(
        _ args: [String], mentions needles: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let r = try runProcess(try binary(), args, timeout: 120)
        let text = r.stdout + r.stderr
        XCTAssertNotEqual(
            r.status, 0, "dcnet-dist \(args.joined(separator: " ")) exited 0:\n\(text)", file: file, line: line)
        for needle in needles {
            XCTAssertTrue(
                r.stderr.contains(needle),
                "stderr of dcnet-dist \(args.joined(separator: " ")) does not mention \(needle):\n\(r.stderr)",
                file: file, line: line)
        }
    }

    private var small: [String] { ["--width", "0.0625", "--epochs", "1", "--max-steps", "1", "--threads", "1"] }

    func testBatchSizeZero() throws {
        try assertRejected(["train", "--data", goodData.path, "--batch-size", "0"] + small, mentions: ["--batch-size"])
    }

    func testUnknownOperator() throws {
        try assertRejected(
            ["train", "--data", goodData.path, "--operator", "foo"] + small, mentions: ["foo", "--operator"])
    }

    func testMissingDataDirectory() throws {
        try assertRejected(
            ["train", "--data", "/nonexistent/cifar"] + small, mentions: ["--data", "/nonexistent/cifar"])
    }

    func testWeightedNonlinearNeedsTanh() throws {
        try assertRejected(
            ["train", "--data", goodData.path, "--weighted", "nonlinear", "--operator", "ball"] + small,
            mentions: ["--weighted", "nonlinear", "tanh"])
    }

    func testNegativeCollectiveTimeout() throws {
        try assertRejected(
            ["train", "--data", goodData.path, "--collective-timeout=-5"] + small,
            mentions: ["--collective-timeout", "-5"])
        try assertRejected(
            ["train", "--data", goodData.path, "--collective-timeout", "soon"] + small,
            mentions: ["--collective-timeout", "soon"])
        // The jobs over a checkpoint check the flag by the same rule, before looking at the checkpoint.
        for command in [["eval"], ["attack", "--method", "fgsm", "--epsilon", "1"], ["features", "--out", "/tmp/f"]] {
            try assertRejected(
                command + [
                    "--checkpoint", "/nonexistent.safetensors", "--data", goodData.path, "--collective-timeout=inf",
                ],
                mentions: ["--collective-timeout", "inf"])
            try assertRejected(
                command + ["--checkpoint", "/nonexistent.safetensors", "--data", goodData.path, "--threads", "0"],
                mentions: ["--threads", "0"])
        }
    }

    func testTruncatedDataFile() throws {
        let path = goodData.file("data_batch_3.bin")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: path))
        try assertRejected(
            ["train", "--data", goodData.path, "--batch-size", "4"] + small, mentions: ["data_batch_3.bin"])
    }

    /// Control: the same small command on good data succeeds, so the rejections above are about the
    /// bad argument and not something else.
    func testGoodCommandSucceeds() throws {
        let r = try runProcess(
            try binary(), ["train", "--data", goodData.path, "--batch-size", "4", "--eval-limit", "4"] + small)
        XCTAssertEqual(r.status, 0, "stdout:\n\(r.stdout)\nstderr:\n\(r.stderr)")
        XCTAssertTrue(r.stdout.contains("max-steps"), r.stdout)
    }

    /// `train --check-flags` lists every conflict between flags and exits without touching --data.
    func testCheckFlagsListsEveryProblemWithoutReadingData() throws {
        let ok = try runProcess(
            try binary(), ["train", "--data", "/nonexistent/cifar", "--operator", "tanh", "--check-flags"])
        XCTAssertEqual(ok.status, 0, "stdout:\n\(ok.stdout)\nstderr:\n\(ok.stderr)")
        XCTAssertEqual(ok.stdout, "")
        try assertRejected(
            [
                "train", "--data", "/nonexistent/cifar", "--operator", "log", "--learnable-radius", "--batch-size", "0",
                "--check-flags",
            ],
            mentions: ["--operator log", "radius", "--batch-size"])
    }

    /// Every committed suite definition, at each of its scales, passes `train --check-flags` for every
    /// run (scripts/experiments checks them before its first run): a run the CLI would reject fails
    /// here, not hours into a suite.
    func testCommittedSuiteDefinitionsPassTheFlagCheck() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/experiments").path
        guard jqInstalled() else { throw XCTSkip("jq not installed (scripts/experiments needs it)") }
        let definitions = try FileManager.default.contentsOfDirectory(
            atPath: root.appendingPathComponent("experiments").path
        ).filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertTrue(definitions.contains("standard.json") && definitions.contains("default.json"), "\(definitions)")
        let suites = TempDir("suites")
        for name in definitions {
            let path = root.appendingPathComponent("experiments/\(name)").path
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
            let scales = ((json as? [String: Any])?["scales"] as? [String: Any])?.keys.sorted() ?? ["default"]
            for scale in scales {
                let scaleFlag = scale == "default" ? [] : ["--\(scale)"]
                let r = try runProcess(
                    "/usr/bin/env",
                    ["DCNET_BIN=\(try binary())", "bash", script] + scaleFlag
                        + ["--definition", path, "--dry-run", "--suite-dir", suites.file("\(name)-\(scale)")],
                    timeout: 600)
                XCTAssertEqual(r.status, 0, "\(name) at scale \(scale):\n\(r.stderr)")
                XCTAssertFalse(r.stderr.contains("flags not checked"), r.stderr)
                XCTAssertTrue(r.stdout.contains(" train "), "\(name) \(scale): no train command\n\(r.stdout)")
            }
        }
    }

    /// `eval` and `inspect` on a checkpoint directory and on files: eval takes the newest readable
    /// checkpoint of a directory (as `attack` does), inspect exits 1 on a damaged file.
    func testEvalTakesADirectoryAndInspectRefusesADamagedFile() throws {
        let run = TempDir("cli-ckpt")
        let train = try runProcess(
            try binary(),
            ["train", "--data", goodData.path, "--batch-size", "4", "--eval-every", "0", "--checkpoint-dir", run.path]
                + small)
        XCTAssertEqual(train.status, 0, train.stderr)
        let checkpoint = run.file("ckpt-00000001.safetensors")
        let eval = try runProcess(try binary(), ["eval", "--checkpoint", run.path, "--data", goodData.path])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(eval.stdout.contains(checkpoint) && eval.stdout.contains("test accuracy"), eval.stdout)

        let inspect = try runProcess(try binary(), ["inspect", checkpoint])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        for needle in [
            "version 2", "checksum: ok (CRC-32 of the whole file", "global step 1", "param/classifier.weight",
        ] {
            XCTAssertTrue(inspect.stdout.contains(needle), "inspect does not print \(needle):\n\(inspect.stdout)")
        }
        var bytes = try FileIO.readAll(checkpoint)
        bytes[bytes.count / 2] ^= 0x10
        run.write("damaged.safetensors", bytes)
        try assertRejected(
            ["inspect", run.file("damaged.safetensors")], mentions: ["damaged.safetensors", "checksum"])
        // An empty directory: a clear message, not a crash, on eval.
        run.mkdir("empty")
        try assertRejected(
            ["eval", "--checkpoint", run.file("empty"), "--data", goodData.path], mentions: ["empty", "no checkpoint"])
    }

    /// `features` on a tiny trained checkpoint writes the classifier's input for the first --limit
    /// test images: the same features as an evaluation-mode forward of the restored network, from
    /// which the classifier gives the network's logits. The run trains with --weighted-gradients,
    /// which the checkpoint's configuration records.
    func testFeaturesMatchAnEvaluationModeForward() throws {
        let run = TempDir("cli-features")
        let train = try runProcess(
            try binary(),
            [
                "train", "--data", goodData.path, "--batch-size", "4", "--eval-every", "0", "--checkpoint-dir",
                run.path,
                "--weighted-gradients",
            ]
                + small)
        XCTAssertEqual(train.status, 0, train.stderr)
        let checkpoint = run.file("ckpt-00000001.safetensors")
        let out = run.file("features.safetensors")
        // Batches of 3 over 7 images: a partial last batch.
        let r = try runProcess(
            try binary(),
            [
                "features", "--checkpoint", run.path, "--data", goodData.path, "--out", out, "--limit", "7",
                "--batch-size", "3", "--threads", "1",
            ])
        XCTAssertEqual(r.status, 0, r.stderr)

        let file = try SafeTensorsFile.read(path: out)
        let contents = try Checkpoint.read(checkpoint)
        XCTAssertEqual(contents.config.weightedGradients, true)
        let model = contents.config.model
        XCTAssertEqual(file.metadata["dcnet.checkpoint"], checkpoint)
        XCTAssertEqual(file.metadata["dcnet.model.architecture"], "cnn9")
        XCTAssertEqual(file.metadata["dcnet.model.convolution"], model.convolution.description)
        let features = try XCTUnwrap(file["features"]), labels = try XCTUnwrap(file["labels"])
        let D = model.widths.last!
        XCTAssertEqual(features.dtype, .f32)
        XCTAssertEqual(features.shape, [7, D])
        XCTAssertEqual(labels.shape, [7])

        let network = model.makeNetwork(batch: 7)
        try Checkpoint.apply(contents, to: network, optimizer: nil, model: model)
        let test = try CIFAR.load(directory: goodData.path, variant: .cifar10, split: .test).prefix(7)
        XCTAssertEqual(labels.uint8s, test.labels)
        let images = network.arena.tensor(network.inputShape)
        let batchLabels = UnsafeMutablePointer<Int32>.allocate(capacity: 7)
        defer { batchLabels.deallocate() }
        fillBatch(
            images: test, indices: 0..<7, epoch: 0, seed: 0, augment: false,
            scaling: contents.config.scaling.scaling, into: images.data, labels: batchLabels)
        let expected = Array(network.penultimate(images).buffer)
        let written = try XCTUnwrap(features.floats)
        XCTAssertEqual(written.count, expected.count)
        // Batches of 3 against one batch of 7: the same arithmetic per image, up to GEMM blocking.
        for i in written.indices { XCTAssertEqual(written[i], expected[i], accuracy: 1e-5 * max(1, abs(expected[i]))) }
        // The features are the classifier's input: W·f + b gives the forward pass's logits.
        let logits = Array(network.forward(images, mode: .evaluation).buffer)
        let classifier = try XCTUnwrap(network.layers.last as? Linear)
        let K = model.classes
        let w = classifier.weight.value!, b = classifier.bias.value!
        for n in 0..<7 {
            for k in 0..<K {
                var z = b[k]
                for d in 0..<D { z += w[k * D + d] * written[n * D + d] }
                XCTAssertEqual(z, logits[n * K + k], accuracy: 1e-4 * max(1, abs(z)), "image \(n) class \(k)")
            }
        }

        // `report --features` finds <run>/features.safetensors: a table row and a scatter plot.
        let suite = TempDir("cli-features-suite")
        suite.mkdir("r1")
        suite.write("r1/features.safetensors", try FileIO.readAll(out))
        suite.write("groups.json", Array("[]".utf8))
        let report = try runProcess(try binary(), ["report", "--suite", suite.path, "--features", suite.path])
        XCTAssertEqual(report.status, 0, report.stderr)
        let markdown = try String(contentsOfFile: suite.file("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("## Feature geometry") && markdown.contains("| r1 | 7 | "), markdown)
        XCTAssertTrue(markdown.contains("![features of r1](features-r1.svg)"), markdown)
        let svg = try String(contentsOfFile: suite.file("features-r1.svg"), encoding: .utf8)
        XCTAssertEqual(svg.components(separatedBy: "class=\"marker\"").count - 1, 7)

        // Next to the features, their angles (features.geometry.json): the same geometry the report
        // computes. With the features file gone (a suite restored from its committed records), the
        // report takes the angles from the record, gives the same table row and keeps the scatter.
        let record = try FeatureGeometryRecord.read(run.file("features.geometry.json"))
        XCTAssertEqual(record.images, 7)
        XCTAssertEqual(record.source, out)
        let geometry = try XCTUnwrap(
            FeatureGeometry(features: written, labels: test.labels.map(Int.init), dimension: D))
        XCTAssertEqual(record.geometry, geometry)
        let row = try XCTUnwrap(markdown.split(separator: "\n").first { $0.hasPrefix("| r1 | 7 | ") })
        try FileManager.default.removeItem(atPath: suite.file("r1/features.safetensors"))
        suite.write("r1/features.geometry.json", try FileIO.readAll(run.file("features.geometry.json")))
        let restored = try runProcess(try binary(), ["report", "--suite", suite.path, "--features", suite.path])
        XCTAssertEqual(restored.status, 0, restored.stderr)
        let fromRecord = try String(contentsOfFile: suite.file("report.md"), encoding: .utf8)
        XCTAssertTrue(fromRecord.split(separator: "\n").contains(row), fromRecord)
        XCTAssertTrue(fromRecord.contains("![features of r1](features-r1.svg)"), fromRecord)
        // Without the scatter on disk the row stays and no link points at a missing file.
        try FileManager.default.removeItem(atPath: suite.file("features-r1.svg"))
        _ = try runProcess(try binary(), ["report", "--suite", suite.path, "--features", suite.path])
        let noPlot = try String(contentsOfFile: suite.file("report.md"), encoding: .utf8)
        XCTAssertTrue(noPlot.split(separator: "\n").contains(row) && !noPlot.contains("features-r1.svg"), noPlot)
        // A damaged record: a warning naming it, and the run has no features.
        suite.write("r1/features.geometry.json", Array("{".utf8))
        let damaged = try runProcess(try binary(), ["report", "--suite", suite.path, "--features", suite.path])
        XCTAssertEqual(damaged.status, 0, damaged.stderr)
        XCTAssertTrue(damaged.stderr.contains("r1/features.geometry.json"), damaged.stderr)
        let without = try String(contentsOfFile: suite.file("report.md"), encoding: .utf8)
        XCTAssertFalse(without.contains("| r1 | 7 | "), without)
    }

    /// `attack --transfer-to` crafts once on --checkpoint and evaluates white-box and on every target:
    /// the records are those of the separate jobs (white-box on the source, --source-checkpoint per
    /// target), except the date, and each lands in its own run's file. Target C has another input
    /// scaling, so the images reach it through pixel values.
    func testAttackTransfersToSeveralTargetsInOneJob() throws {
        // The attack tests' toy classes (learnt in a hundred steps, and not robust at these budgets).
        // lr 0.1 for 8 epochs left some seeds at a constant prediction on one host and not on another
        // (the BLAS kernels' rounding differs); lr 0.02 for 20 epochs learnt all 8 seeds tried on both.
        let data = TempDir("cli-attack-data")
        try writeCIFAR10(
            train: ToyImages.dataset(count: 160, seed: 7), test: ToyImages.dataset(count: 23, seed: 99), to: data.path)
        let suite = TempDir("cli-attack")
        let runs = [("A", ["--seed", "1"]), ("B", ["--seed", "2"]), ("C", ["--seed", "3", "--scaling", "meanstd"])]
        for (run, flags) in runs {
            let r = try runProcess(
                try binary(),
                [
                    "train", "--data", data.path, "--operator", "baseline", "--width", "0.0625", "--batch-size", "32",
                    "--epochs", "20", "--lr", "0.02", "--warmup-epochs", "0", "--schedule", "constant", "--no-augment",
                    "--eval-every", "0", "--threads", "1", "--checkpoint-dir", suite.file("\(run)/checkpoints"),
                ] + flags)
            XCTAssertEqual(r.status, 0, "training \(run): \(r.stderr)")
        }
        func checkpoints(_ run: String) -> String { suite.file("\(run)/checkpoints") }
        func records(_ path: String) throws -> [AttackRecord] {
            try MetricsReader.read(path: path).records.compactMap {
                guard case .attack(var a) = $0 else {
                    XCTFail("not an attack record in \(path): \($0)")
                    return nil
                }
                a.date = nil
                return a
            }
        }
        for method in ["fgsm", "pgd"] {
            let out = TempDir("cli-attack-\(method)")
            let common = [
                "--data", data.path, "--method", method, "--epsilon", "0,8,32", "--steps", "2", "--batch-size", "5",
                "--threads", "1", "--seed", "9",
            ]
            // One job; for PGD the target names are left to their paths (<suite>/B/checkpoints → B).
            let names = method == "fgsm" ? ["--transfer-name", "B", "--transfer-name", "C"] : []
            let one = try runProcess(
                try binary(),
                [
                    "attack", "--checkpoint", checkpoints("A"), "--name", "A", "--output", out.file("one/A.jsonl"),
                    "--transfer-to", checkpoints("B"), "--transfer-output", out.file("one/B.jsonl"),
                    "--transfer-to", checkpoints("C"), "--transfer-output", out.file("one/C.jsonl"),
                ] + names + common)
            XCTAssertEqual(one.status, 0, one.stderr)
            // One console line per model and epsilon.
            for (model, count) in [("A white-box", 3), ("B black-box from A", 3), ("C black-box from A", 3)] {
                let lines = one.stdout.components(separatedBy: model + ": accuracy").count - 1
                XCTAssertEqual(lines, count, "\(model):\n\(one.stdout)")
            }
            // The separate jobs of before.
            var separate = [
                ["--checkpoint", checkpoints("A"), "--name", "A", "--output", out.file("old/A.jsonl")]
            ]
            for target in ["B", "C"] {
                separate.append([
                    "--checkpoint", checkpoints(target), "--name", target, "--output", out.file("old/\(target).jsonl"),
                    "--source-checkpoint", checkpoints("A"), "--source-name", "A",
                ])
            }
            for args in separate {
                let r = try runProcess(try binary(), ["attack"] + args + common)
                XCTAssertEqual(r.status, 0, r.stderr)
            }
            var accuracies: [[Double]] = []
            for run in ["A", "B", "C"] {
                let new = try records(out.file("one/\(run).jsonl")), old = try records(out.file("old/\(run).jsonl"))
                XCTAssertEqual(new.count, 3, "\(method) \(run)")
                XCTAssertEqual(new, old, "\(method) \(run): one job against separate jobs")
                for r in new {
                    XCTAssertEqual(r.method, method)
                    XCTAssertEqual(r.mode, run == "A" ? .whiteBox : .blackBox, "\(method) \(run)")
                    XCTAssertEqual(r.source, "A", "\(method) \(run)")
                    XCTAssertEqual(r.target, run, "\(method) \(run)")
                    XCTAssertEqual(r.images, 23)
                }
                XCTAssertEqual(new.map(\.epsilonPixels), [0, 8, 32])
                XCTAssertEqual(new[0].adversarialAccuracy, new[0].cleanAccuracy, "\(method) \(run): eps 0")
                accuracies.append(new.map { $0.cleanAccuracy ?? -1 } + new.map(\.adversarialAccuracy))
            }
            // Not vacuous: at eps 32 the attack hurts the crafting model and transfers to a target, so
            // evaluating clean images, or the wrong model, would show.
            XCTAssertLessThan(accuracies[0][5], accuracies[0][2], "\(method): \(accuracies)")
            XCTAssertTrue(accuracies[1...].contains { $0[5] < $0[2] }, "\(method): \(accuracies)")
        }
    }

    /// --transfer-name / --transfer-output must match --transfer-to in number; --transfer-to excludes
    /// --source-checkpoint, needs --transfer-output when --output is given, and must exist.
    func testAttackTransferArgumentsAreChecked() throws {
        let base = ["attack", "--checkpoint", goodData.path, "--data", goodData.path, "--epsilon", "1"]
        let to = ["--transfer-to", goodData.path, "--transfer-to", goodData.path]
        try assertRejected(
            base + to + ["--transfer-output", "x.jsonl"],
            mentions: ["--transfer-output is given 1 time(s) but --transfer-to 2 time(s)"])
        try assertRejected(
            base + to + ["--transfer-name", "a", "--transfer-name", "b", "--transfer-name", "c"],
            mentions: ["--transfer-name is given 3 time(s) but --transfer-to 2 time(s)"])
        try assertRejected(
            base + ["--transfer-output", "x.jsonl"],
            mentions: ["--transfer-output is given 1 time(s) but --transfer-to 0 time(s)"])
        try assertRejected(
            base + to + ["--source-checkpoint", goodData.path],
            mentions: ["--transfer-to cannot be combined with --source-checkpoint"])
        try assertRejected(
            base + to + ["--output", "a.jsonl"], mentions: ["--transfer-to with --output needs --transfer-output"])
        try assertRejected(
            base + ["--transfer-to", "/nonexistent/ckpt"], mentions: ["--transfer-to /nonexistent/ckpt"])
    }
}
