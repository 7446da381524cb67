import DCNetData
import DCNetLayers
import DCNetModels
import DCNetTensor
import Foundation
import MPI
import TestSupport
import XCTest

@testable import DCNetTraining

/// The distributed trainer under `mpirun -np N` (scripts/test runs N = 2 and 3; plain `swift test`
/// runs it with one rank). Every rank runs the same methods in the same order and reaches the same
/// collectives; verdicts computed on rank 0 are broadcast so every rank asserts the same thing, and
/// rank-local code that can throw before a collective runs in `Communicator.agree`, so a failure on
/// one rank fails the test on all of them instead of leaving the others waiting.
/// Data and checkpoint directories are per rank (identical data; only rank 0 touches checkpoints).
final class MultiRankTrainerTests: XCTestCase {
    private var world: Communicator { Communicator.world }

    /// Global batch 12 divides by 1, 2 and 3 ranks.
    private let globalBatch = 12

    private func allEqual(_ value: Int64) throws -> Bool {
        let hi = try world.allReduce(value, op: .max), lo = try world.allReduce(value, op: .min)
        return hi == lo
    }

    func testReplicasStayIdentical() throws {
        let data = try world.agree("writing the data set") { try learnableDataset(train: 60, test: 12) }
        var config = tinyConfig(tinyModel(tanhConv), batch: globalBatch)
        config.augment = true
        config.schedule = .cosine; config.warmupEpochs = 0.5; config.epochs = 3
        let t = try Trainer(config: config, options: tinyOptions(data: data.path, maxSteps: 7))
        XCTAssertEqual(try t.run(), .stoppedAtMaxSteps)
        XCTAssertEqual(t.stepLosses.count, 7)
        XCTAssertEqual(t.localBatch * world.size, globalBatch)
        XCTAssertTrue(
            try allEqual(Int64(t.replicaChecksum())),
            "replica checksums differ between ranks after 7 steps (rank \(world.rank): \(t.replicaChecksum()))")
        for (i, loss) in t.stepLosses.enumerated() {
            XCTAssertTrue(try allEqual(Int64(loss.bitPattern)), "step \(i + 1): ranks report different global losses")
        }
        XCTAssertNoThrow(try t.verifyIdenticalReplicas())
        // Parameters actually moved (a trainer that never updates would also stay identical).
        var fresh = Xoshiro256StarStar(seed: config.seed)
        let initial = config.model.makeNetwork(batch: 1)
        initial.initializeParameters(using: &fresh)
        let moved = (0..<t.network.parameterCount).contains { t.network.values[$0] != initial.values[$0] }
        XCTAssertTrue(moved, "parameters did not change during training")
    }

    /// Runs `config` for `steps` steps with all ranks, then on rank 0 alone (a one-rank communicator
    /// split off the world), and returns the largest relative difference of the step losses and of
    /// the final parameters, as rank 0 computed it (NaN if the reference run failed).
    private func oneVersusAll(
        _ config: TrainingConfig, steps: Int, compression: GradientCompression = .none,
        reference referenceConfig: TrainingConfig? = nil
    )
        throws -> (loss: Double, parameters: Double)
    {
        let data = try world.agree("writing the data set") { try learnableDataset(train: 48, test: 12) }
        var options = tinyOptions(data: data.path, maxSteps: steps)
        options.gradientCompression = compression
        let multi = try Trainer(config: config, options: options, communicator: world)
        _ = try multi.run()
        XCTAssertEqual(multi.stepLosses.count, steps)
        let single = try world.split(color: world.rank == 0 ? 0 : nil)
        var verdict: [Double] = [0, 0]
        if let single {
            XCTAssertEqual(single.size, 1)
            do {
                let reference = try Trainer(
                    config: referenceConfig ?? config, options: tinyOptions(data: data.path, maxSteps: steps),
                    communicator: single)
                _ = try reference.run()
                for (a, b) in zip(multi.stepLosses, reference.stepLosses) {
                    verdict[0] = max(verdict[0], Double(abs(a - b)) / max(Double(abs(b)), 1e-6))
                }
                if multi.stepLosses.count != reference.stepLosses.count { verdict[0] = .infinity }
                var diff = 0.0, norm = 0.0
                for i in 0..<multi.network.parameterCount {
                    let d = Double(multi.network.values[i] - reference.network.values[i])
                    diff += d * d; norm += Double(reference.network.values[i] * reference.network.values[i])
                }
                verdict[1] = (diff / max(norm, 1e-30)).squareRoot()
            } catch {
                XCTFail("rank 0: one-rank reference run failed: \(error)")
                verdict = [.nan, .nan]
            }
        }
        try world.broadcast(&verdict, root: 0)
        return (verdict[0], verdict[1])
    }

    /// Step losses and final parameters of `d` (from `oneVersusAll`) within relative tolerances.
    private func assertClose(
        _ d: (loss: Double, parameters: Double), _ what: String, loss: Double = 1e-4, parameters: Double = 1e-3,
        line: UInt = #line
    ) {
        XCTAssertLessThan(
            d.loss, loss, "\(world.size) ranks \(what): step losses differ from one rank by \(d.loss) (relative)",
            line: line)
        XCTAssertLessThan(
            d.parameters, parameters, "final parameters differ from one rank by \(d.parameters) (relative L2)",
            line: line)
    }

    func testOneRankEqualsNRanksSyncBatchNorm() throws {
        var config = tinyConfig(tinyModel(tanhConv), batch: globalBatch)
        config.syncBatchNorm = true
        config.augment = true
        assertClose(try oneVersusAll(config, steps: 4), "with synchronised BatchNorm")
    }

    /// bfloat16 gradient exchange: close to the Float32 one-rank run (8-bit rounding of every
    /// gradient), and with several ranks measurably different from it (the compression is applied).
    func testBFloat16GradientCompressionStaysCloseToOneRank() throws {
        var config = tinyConfig(tinyModel(tanhConv), batch: globalBatch)
        config.syncBatchNorm = true
        let d = try oneVersusAll(config, steps: 4, compression: .bf16)
        assertClose(d, "with bf16 gradients", loss: 2e-2, parameters: 2e-2)
        if world.size > 1 {
            XCTAssertGreaterThan(
                d.parameters, 1e-7,
                "bf16 compression with \(world.size) ranks left the parameters bit-identical to Float32")
        } else {
            XCTAssertEqual(d.parameters, 0, "with one rank there is nothing to compress")
        }
    }

    func testOneRankEqualsNRanksWithoutBatchNorm() throws {
        var config = tinyConfig(tinyModel(.baseline, batchNorm: false), batch: globalBatch, lr: 0.02)
        config.augment = true
        assertClose(try oneVersusAll(config, steps: 4), "without BatchNorm")
    }

    /// Control for the two tests above: per-rank BatchNorm statistics do change the losses with
    /// several ranks, so the comparison is sensitive enough to see a missing synchronisation.
    func testUnsyncedBatchNormDiffersWithSeveralRanks() throws {
        var config = tinyConfig(tinyModel(.baseline), batch: globalBatch)
        config.syncBatchNorm = false
        let d = try oneVersusAll(config, steps: 2)
        if world.size == 1 {
            XCTAssertEqual(d.loss, 0, "one rank against itself must agree exactly")
        } else {
            XCTAssertGreaterThan(d.loss, 1e-4, "per-rank BatchNorm statistics should change the losses")
        }
    }

    /// `--accumulate`: without BatchNorm, N ranks × K micro-batches take the same steps as N·K ranks
    /// (here: one rank with N·K micro-batches, the same partition of each global batch).
    func testAccumulationWithoutBatchNormEqualsNTimesKRanks() throws {
        var config = tinyConfig(tinyModel(tanhConv, batchNorm: false), batch: globalBatch, lr: 0.02)
        config.augment = true
        config.accumulation = 2
        var reference = config
        reference.accumulation = 2 * world.size
        assertClose(
            try oneVersusAll(config, steps: 4, reference: reference),
            "× 2 micro-batches without BatchNorm (against \(2 * world.size) micro-batches on one rank)")
    }

    /// With BatchNorm the statistics are per micro-batch: with --sync-batchnorm, micro-batch k is
    /// normalised over every rank's micro-batch k, so N ranks × K equal one rank × K micro-batches.
    func testAccumulationWithSyncBatchNormNormalisesEachMicroBatchOverRanks() throws {
        var config = tinyConfig(tinyModel(tanhConv), batch: globalBatch)
        config.syncBatchNorm = true
        config.accumulation = 2
        assertClose(try oneVersusAll(config, steps: 4), "× 2 synchronised micro-batches (against one rank × 2)")
    }

    /// Without synchronisation each rank normalises each of its micro-batches alone: N ranks × K
    /// micro-batches then train like N·K ranks with per-rank BatchNorm, and unlike one batch.
    func testAccumulationWithPerRankBatchNormEqualsNTimesKRanks() throws {
        var config = tinyConfig(tinyModel(.baseline), batch: globalBatch)
        config.accumulation = 2
        var reference = config
        reference.accumulation = 2 * world.size
        let d = try oneVersusAll(config, steps: 3, reference: reference)
        XCTAssertLessThan(
            d.loss, 1e-4,
            "\(world.size) ranks × 2 per-rank-BatchNorm micro-batches differ from \(2 * world.size) micro-batches by "
                + "\(d.loss)"
        )
        var whole = config
        whole.accumulation = nil
        let control = try oneVersusAll(config, steps: 2, reference: whole)
        XCTAssertGreaterThan(control.loss, 1e-4, "micro-batch BatchNorm statistics should differ from whole-batch ones")
    }

    /// Checkpoints fall on step boundaries only, so a run with accumulation resumes bit-exactly.
    func testResumeWithAccumulationIsBitExact() throws {
        let data = try world.agree("writing the data set") { try learnableDataset(train: 40, test: 12) }
        let dirA = TempDir("mrAccA"), dirB = TempDir("mrAccB")
        var config = tinyConfig(tinyModel(tanhConv), batch: globalBatch)
        config.augment = true
        config.accumulation = 2
        let a = try Trainer(config: config, options: tinyOptions(data: data.path, maxSteps: 5, checkpoints: dirA.path))
        _ = try a.run()
        let b = try Trainer(config: config, options: tinyOptions(data: data.path, maxSteps: 3, checkpoints: dirB.path))
        _ = try b.run()
        let b2 = try Trainer(
            config: config, options: tinyOptions(data: data.path, maxSteps: 5, checkpoints: dirB.path, resume: true))
        XCTAssertEqual(b2.progress.globalStep, 3, "resumed mid-step")
        XCTAssertEqual(b2.config.microBatches, 2, "the checkpoint's accumulation was not restored")
        _ = try b2.run()
        XCTAssertEqual((b.stepLosses + b2.stepLosses).map(\.bitPattern), a.stepLosses.map(\.bitPattern))
        XCTAssertEqual(b2.replicaChecksum(), a.replicaChecksum())
    }

    /// Stop after N steps, resume with the same ranks, and compare with an uninterrupted run bit for bit.
    func testResumeIsBitExact() throws {
        let data = try world.agree("writing the data set") { try learnableDataset(train: 40, test: 12) }
        let dirA = TempDir("mrA"), dirB = TempDir("mrB")
        var config = tinyConfig(tinyModel(tanhConv), batch: globalBatch)
        config.augment = true; config.syncBatchNorm = true
        config.schedule = .cosine; config.warmupEpochs = 1; config.epochs = 5
        let n = 5  // 4 steps per epoch: resumes mid-epoch 2
        let a = try Trainer(
            config: config, options: tinyOptions(data: data.path, maxSteps: 2 * n, checkpoints: dirA.path))
        _ = try a.run()
        let b = try Trainer(config: config, options: tinyOptions(data: data.path, maxSteps: n, checkpoints: dirB.path))
        _ = try b.run()
        let b2 = try Trainer(
            config: config, options: tinyOptions(data: data.path, maxSteps: 2 * n, checkpoints: dirB.path, resume: true)
        )
        XCTAssertEqual(b2.progress.globalStep, n)
        XCTAssertEqual(
            b2.replicaChecksum(), b.replicaChecksum(), "rank \(world.rank): resumed state differs from the saved one")
        _ = try b2.run()
        let joined = b.stepLosses + b2.stepLosses
        XCTAssertEqual(
            joined.map(\.bitPattern), a.stepLosses.map(\.bitPattern),
            "rank \(world.rank) of \(world.size): resumed \(joined) vs uninterrupted \(a.stepLosses)")
        XCTAssertEqual(b2.replicaChecksum(), a.replicaChecksum())
        XCTAssertTrue(try allEqual(Int64(b2.replicaChecksum())))
    }

    /// The trainer's sharding: the union over ranks of each step's shards is the global batch, and
    /// over an epoch every sample is used once (wrap: a few at the start of the order twice, to fill
    /// the last batch; drop: the last partial batch is left out).
    func testShardingCoversEverySampleOncePerEpoch() throws {
        let data = try world.agree("writing the data set") { try learnableDataset(train: 50, test: 12) }
        for remainder in [RemainderKind.wrap, .drop] {
            var config = tinyConfig(tinyModel(.baseline), batch: globalBatch)
            config.remainder = remainder
            let t = try Trainer(config: config, options: tinyOptions(data: data.path, maxSteps: 1))
            let n = t.trainSet.count, policy = t.config.remainder.policy
            XCTAssertEqual(n, 50)
            for epoch in [0, 1] {
                let permutation = DataOrder.permutation(count: n, seed: config.seed, epoch: epoch)
                var seen = [Int](repeating: 0, count: n)
                for step in 0..<t.stepsPerEpoch {
                    let global = DataOrder.globalBatchIndices(
                        permutation: permutation, step: step,
                        globalBatch: config.globalBatch, policy: policy)
                    let shard = DataOrder.shard(global, rank: world.rank, size: world.size)
                    XCTAssertEqual(shard.count, t.localBatch)
                    let gathered = try world.allGather(shard)
                    XCTAssertEqual(gathered.sorted(), global.sorted(), "\(remainder) epoch \(epoch) step \(step)")
                    for i in gathered { seen[i] += 1 }
                }
                switch remainder {
                case .wrap:
                    XCTAssertEqual(t.stepsPerEpoch, 5)
                    let extra = t.stepsPerEpoch * globalBatch - n
                    let twice = Set(permutation.prefix(extra))
                    for i in 0..<n {
                        XCTAssertEqual(
                            seen[i], twice.contains(i) ? 2 : 1,
                            "\(remainder) epoch \(epoch): sample \(i) seen \(seen[i]) times")
                    }
                case .drop:
                    XCTAssertEqual(t.stepsPerEpoch, 4)
                    let left = Set(permutation.suffix(n - 4 * globalBatch))
                    for i in 0..<n {
                        XCTAssertEqual(
                            seen[i], left.contains(i) ? 0 : 1,
                            "\(remainder) epoch \(epoch): sample \(i) seen \(seen[i]) times")
                    }
                }
            }
        }
    }

    /// 10,001 test images (not divisible by 2 or 3) are each evaluated exactly once, and the result
    /// equals a one-rank evaluation on rank 0.
    func testEvaluationCountsEveryImageOnce() throws {
        let count = 10_001
        var pixels = [UInt8](repeating: 0, count: count * LabeledImages.imageBytes)
        var labels = [UInt8](repeating: 0, count: count)
        pixels.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<count {
                labels[i] = UInt8((i * 7 + i / 10) % 10)
                for c in 0..<3 {  // one colour per image and channel (memset: fast in debug builds)
                    (buffer.baseAddress! + i * 3072 + c * 1024).update(
                        repeating: UInt8(truncatingIfNeeded: i * (c + 3) * 37), count: 1024)
                }
            }
        }
        let dataset = LabeledImages(pixels: pixels, labels: labels, classCount: 10, classNames: CIFARNames.cifar10)
        // Global average pooling + a linear layer: the cheapest network whose predictions vary
        // with the image (CNN-9 would take half a minute for 10,001 images in a debug build).
        let network = Network(
            layers: [AvgPool2D("global_pool"), Linear("classifier", inFeatures: 3, outFeatures: 10)],
            input: Shape(n: 1000, c: 3, h: 32, w: 32), classes: 10)
        var rng = Xoshiro256StarStar(seed: 11)
        network.initializeParameters(using: &rng)
        let images = network.arena.tensor(network.inputShape)
        let labelBuffer = UnsafeMutablePointer<Int32>.allocate(capacity: 1000)
        defer { labelBuffer.deallocate() }

        let e = try Trainer.evaluate(
            network: network, dataset: dataset, scaling: .authors,
            communicator: world, images: images, labels: labelBuffer)
        XCTAssertEqual(e.count, count)
        XCTAssertEqual(e.confusion.flatMap { $0 }.reduce(0, +), count)
        XCTAssertEqual(
            e.confusion.map { $0.reduce(0, +) }, dataset.classCounts(), "confusion rows must sum to the class counts")
        XCTAssertTrue(e.loss.isFinite)
        // The contiguous evaluation shards of all ranks tile 0..<count.
        let shard = DataOrder.evaluationShard(count: count, rank: world.rank, size: world.size)
        let bounds = try world.allGather([shard.lowerBound, shard.upperBound])
        for r in 0..<world.size {
            XCTAssertEqual(bounds[2 * r], r == 0 ? 0 : bounds[2 * r - 1])
        }
        XCTAssertEqual(bounds.last, count)

        // One-rank reference on rank 0 (not at all cheap in debug builds: only if there are several ranks).
        var verdict: [Double] = [0, 0]
        if world.size > 1 {
            let single = try world.split(color: world.rank == 0 ? 0 : nil)  // collective: every rank calls it
            try world.agree("the one-rank reference evaluation on rank 0") {
                guard let single else { return }
                let r = try Trainer.evaluate(
                    network: network, dataset: dataset, scaling: .authors,
                    communicator: single, images: images, labels: labelBuffer)
                verdict[0] = r.confusion == e.confusion ? 0 : 1
                verdict[1] = abs(r.loss - e.loss) / max(abs(r.loss), 1e-12)
            }
        }
        try world.broadcast(&verdict, root: 0)
        XCTAssertEqual(verdict[0], 0, "the confusion matrix differs from a one-rank evaluation")
        XCTAssertLessThan(verdict[1], 1e-9, "the mean loss differs from a one-rank evaluation")
    }
}
