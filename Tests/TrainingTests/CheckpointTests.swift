import DCNetData
import DCNetLayers
import DCNetModels
import Foundation
import MPI
import TestSupport
import XCTest

@testable import DCNetTraining

/// Checkpoints: bit-exact save/load, exact continuation, the file format seen from Python, refusal of
/// mismatching models and skipping of damaged files.
final class CheckpointTests: XCTestCase {
    /// 60 training images, global batch 16: 4 steps per epoch (the last wraps), so resuming at
    /// step 6 resumes in the middle of the second epoch.
    private func roundTrip(_ config: TrainingConfig, n: Int) throws {
        let data = try learnableDataset(train: 60, test: 16)
        let dirA = TempDir("ckptA"), dirB = TempDir("ckptB")

        let a = try Trainer(
            config: config, options: tinyOptions(data: data.path, maxSteps: 2 * n, checkpoints: dirA.path))
        XCTAssertEqual(try a.run(), .stoppedAtMaxSteps)

        let b = try Trainer(config: config, options: tinyOptions(data: data.path, maxSteps: n, checkpoints: dirB.path))
        XCTAssertEqual(try b.run(), .stoppedAtMaxSteps)
        let written = dirB.file(Checkpoint.fileName(step: n))
        XCTAssertTrue(FileManager.default.fileExists(atPath: written), "no checkpoint at step \(n)")

        // Every tensor in the file equals the live one bit for bit, and nothing is missing or extra.
        let contents = try Checkpoint.read(written)
        let live = liveTensors(b)
        XCTAssertEqual(Set(contents.file.names), Set(live.keys))
        for (name, bytes) in live {
            XCTAssertEqual(contents.file[name]?.bytes, bytes, "\(name) differs between the trainer and its checkpoint")
        }
        XCTAssertEqual(contents.progress.globalStep, n)
        XCTAssertEqual(contents.config, config)
        if config.optimizer == .adam { XCTAssertEqual(contents.progress.adamSteps, n) }

        // Loading restores the same bits (parameters, state buffers, optimizer moments, counters).
        let b2 = try Trainer(
            config: config, options: tinyOptions(data: data.path, maxSteps: 2 * n, checkpoints: dirB.path, resume: true)
        )
        XCTAssertEqual(b2.progress.globalStep, n)
        XCTAssertEqual(b2.optimizer.adamSteps, b.optimizer.adamSteps)
        XCTAssertEqual(b2.replicaChecksum(), b.replicaChecksum())
        let restored = liveTensors(b2)
        for (name, bytes) in live { XCTAssertEqual(restored[name], bytes, "\(name) not restored bit-exactly") }

        XCTAssertEqual(try b2.run(), .stoppedAtMaxSteps)
        let joined = b.stepLosses + b2.stepLosses
        XCTAssertEqual(joined.count, 2 * n)
        XCTAssertEqual(
            joined.map(\.bitPattern), a.stepLosses.map(\.bitPattern),
            "losses after resuming differ from the uninterrupted run:\n  resumed:       \(joined)\n  uninterrupted: "
                + "\(a.stepLosses)"
        )
        XCTAssertEqual(b2.replicaChecksum(), a.replicaChecksum(), "final state differs from the uninterrupted run")
        let finalA = liveTensors(a), finalB = liveTensors(b2)
        for (name, bytes) in finalA where finalB[name] != bytes { XCTFail("\(name) differs at step \(2 * n)") }
    }

    func testResumeIsBitExactSGDTanhConv() throws {
        var config = tinyConfig(tinyModel(tanhConv), batch: 16, lr: 0.05)
        config.augment = true  // augmentation must also be a function of (seed, epoch, index)
        config.schedule = .cosine; config.warmupEpochs = 1; config.epochs = 4
        try roundTrip(config, n: 6)
    }

    func testResumeIsBitExactAdamBaseline() throws {
        var config = tinyConfig(tinyModel(.baseline), batch: 16, lr: 0.003)
        config.optimizer = .adam
        config.gradientClipNorm = 5
        try roundTrip(config, n: 5)
    }

    /// The checkpoint is a valid safetensors file for the reference Python implementation.
    func testCheckpointOpensInPython() throws {
        guard let python = pythonWithSafetensors() else {
            throw XCTSkip("python3 with numpy and safetensors is not installed (pip install numpy safetensors)")
        }
        let data = try learnableDataset(train: 32, test: 16)
        let dir = TempDir("ckptpy")
        let trainer = try Trainer(
            config: tinyConfig(tinyModel(tanhConv), batch: 16),
            options: tinyOptions(data: data.path, maxSteps: 1, checkpoints: dir.path))
        _ = try trainer.run()
        let path = dir.file(Checkpoint.fileName(step: 1))
        let w = trainer.network.parameters.first { $0.name == "stage1.1.conv.weight" }!
        let script = """
            import json, sys
            import numpy as np
            from safetensors import safe_open
            from safetensors.numpy import load_file
            t = load_file(sys.argv[1])
            w = t["param/stage1.1.conv.weight"]
            assert w.dtype == np.float32, w.dtype
            print("shape", list(w.shape))
            print("first", repr(float(w.reshape(-1)[0])))
            print("sum", repr(float(w.astype(np.float64).sum())))
            print("has_radius", "param/stage1.1.conv.radius" in t)
            print("has_moment", "optimizer.moment1/stage1.1.conv.weight" in t)
            print("has_state", "state/stage1.1.bn.running_mean" in t)
            with safe_open(sys.argv[1], framework="numpy") as f:
                meta = f.metadata()
            print("format", meta["dcnet.format"])
            print("step", json.loads(meta["dcnet.progress"])["globalStep"])
            """
        let r = try runProcess(python, ["-c", script, path])
        XCTAssertEqual(r.status, 0, "python failed: \(r.stderr)")
        let lines = Dictionary(
            uniqueKeysWithValues: r.stdout.split(separator: "\n").map { line -> (String, String) in
                let parts = line.split(separator: " ", maxSplits: 1)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            })
        XCTAssertEqual(lines["shape"], "\(w.dims)")
        XCTAssertEqual(w.dims, [4, 3, 3, 3])
        XCTAssertEqual(lines["first"].flatMap(Float.init), w.value[0])
        let sum = (0..<w.count).reduce(0.0) { $0 + Double(w.value[$1]) }
        XCTAssertEqual(lines["sum"].flatMap(Double.init) ?? .nan, sum, accuracy: 1e-9 * max(1, abs(sum)))
        XCTAssertEqual(lines["has_radius"], "True")
        XCTAssertEqual(lines["has_moment"], "True")
        XCTAssertEqual(lines["has_state"], "True")
        XCTAssertEqual(lines["format"], "dcnet-checkpoint")
        XCTAssertEqual(lines["step"], "1")
    }

    private func writeCheckpoint(model: ModelConfig, to path: String) throws {
        let network = model.makeNetwork(batch: 2)
        var rng = Xoshiro256StarStar(seed: 1)
        network.initializeParameters(using: &rng)
        let config = tinyConfig(model)
        try Checkpoint.write(
            to: path, network: network, optimizer: Optimizer(config: config, network: network),
            config: config, progress: TrainingProgress())
    }

    private func assertRefuses(written: ModelConfig, loadedInto other: ModelConfig, mentioning needle: String) throws {
        let dir = TempDir("ckptmm")
        let path = dir.file("m.safetensors")
        try writeCheckpoint(model: written, to: path)
        let contents = try Checkpoint.read(path)
        let network = other.makeNetwork(batch: 2)
        let before = Array(network.valueBuffer)
        XCTAssertThrowsError(try Checkpoint.apply(contents, to: network, optimizer: nil, model: other)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("different model"), "unclear message: \(text)")
            XCTAssertTrue(text.contains(path), "message does not name the file: \(text)")
            XCTAssertTrue(text.contains(needle), "message does not show the differing setting \(needle): \(text)")
        }
        XCTAssertEqual(
            Array(network.valueBuffer).map(\.bitPattern), before.map(\.bitPattern),
            "a refused checkpoint modified the network")
    }

    func testLoadRefusesDifferentWidth() throws {
        try assertRefuses(
            written: tinyModel(.baseline, widths: [4, 8, 8]),
            loadedInto: tinyModel(.baseline, widths: [4, 8, 16]), mentioning: "16")
    }

    func testLoadRefusesDifferentOperator() throws {
        try assertRefuses(written: tinyModel(.baseline), loadedInto: tinyModel(tanhConv), mentioning: "tanh")
    }

    /// A checkpoint truncated on disk fails verification; `newestValid` reports it and falls back to
    /// the previous one, and a resumed trainer continues from that one.
    func testTruncatedCheckpointIsSkipped() throws {
        let data = try learnableDataset(train: 48, test: 16)
        let dir = TempDir("ckpttr")
        let config = tinyConfig(tinyModel(.baseline), batch: 16)
        var options = tinyOptions(data: data.path, maxSteps: 4, checkpoints: dir.path)
        options.checkpointEvery = 2
        let t = try Trainer(config: config, options: options)
        _ = try t.run()
        let older = dir.file(Checkpoint.fileName(step: 2)), newest = dir.file(Checkpoint.fileName(step: 4))
        XCTAssertEqual(Checkpoint.list(in: dir.path), [newest, older])

        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: newest))
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: size / 2)
        try handle.close()

        var skipped: [(String, String)] = []
        let chosen = Checkpoint.newestValid(in: dir.path) { skipped.append(($0, "\($1)")) }
        XCTAssertEqual(chosen?.path, older)
        XCTAssertEqual(chosen?.progress.globalStep, 2)
        XCTAssertEqual(skipped.map(\.0), [newest])
        XCTAssertFalse(skipped.first?.1.isEmpty ?? true)

        // Flipping one data byte (same size) is caught by the checksum as well.
        let olderBytes = try Data(contentsOf: URL(fileURLWithPath: older))
        var flipped = olderBytes
        flipped[flipped.count - 3] ^= 0x40
        try flipped.write(to: URL(fileURLWithPath: newest))
        XCTAssertThrowsError(try Checkpoint.read(newest))
        XCTAssertEqual(Checkpoint.newestValid(in: dir.path) { _, _ in }?.path, older)

        let resumed = try Trainer(
            config: config, options: tinyOptions(data: data.path, maxSteps: 4, checkpoints: dir.path, resume: true))
        XCTAssertEqual(resumed.progress.globalStep, 2)

        // Nothing valid left: newestValid gives nil (the trainer starts fresh).
        try Data(olderBytes.prefix(100)).write(to: URL(fileURLWithPath: older))
        XCTAssertNil(Checkpoint.newestValid(in: dir.path) { _, _ in })
        let fresh = try Trainer(
            config: config, options: tinyOptions(data: data.path, maxSteps: 4, checkpoints: dir.path, resume: true))
        XCTAssertEqual(fresh.progress.globalStep, 0)
    }
}
