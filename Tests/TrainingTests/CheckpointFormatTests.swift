import DCNetData
import DCNetFormats
import DCNetModels
import Foundation
import TestSupport
import XCTest

@testable import DCNetTraining

/// Checkpoint format 2: every byte under the checksum, every decoded value checked, format 1 still
/// read (the golden file), and bounds on sizes taken from files.
final class CheckpointFormatTests: XCTestCase {
    /// A format-2 checkpoint of a tiny model after 2 steps.
    private func writeCheckpoint(in dir: TempDir) throws -> String {
        let data = try learnableDataset(train: 32, test: 8)
        let trainer = try Trainer(
            config: tinyConfig(tinyModel(tanhConv)),
            options: tinyOptions(data: data.path, maxSteps: 2, checkpoints: dir.path))
        _ = try trainer.run()
        return dir.file(Checkpoint.fileName(step: 2))
    }

    private func bytes(_ path: String) throws -> [UInt8] { try FileIO.readAll(path) }
    private func write(_ bytes: [UInt8], _ path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Replaces the first occurrence of `a` with `b` (same length keeps every offset).
    private func edited(_ file: [UInt8], _ a: String, _ b: String) -> [UInt8] {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard let at = (0...(file.count - x.count)).first(where: { file[$0..<$0 + x.count].elementsEqual(x) }) else {
            XCTFail("\(a) not in the file"); return file
        }
        return Array(file[..<at]) + y + Array(file[(at + x.count)...])
    }

    func testVersion2ChecksumCoversTheMetadata() throws {
        let dir = TempDir("ckpt-v2")
        let path = try writeCheckpoint(in: dir)
        let good = try Checkpoint.read(path)
        XCTAssertEqual(good.version, "2")
        XCTAssertTrue(good.metadataProtected)
        XCTAssertEqual(good.note, "")
        XCTAssertNil(good.file.metadata["dcnet.model"], "format 2 keeps one copy of the model configuration")
        let original = try bytes(path)
        // A digit of the stored step, the architecture, a width: each edit keeps the file's layout.
        for (a, b) in [
            ("\"globalStep\\\":2", "\"globalStep\\\":7"), ("cnn9", "vgg9"), ("\"widths\\\":[4", "\"widths\\\":[9"),
        ] {
            let damaged = dir.file("damaged.safetensors")
            try write(edited(original, a, b), damaged)
            XCTAssertThrowsError(try Checkpoint.read(damaged), "edit \(a) → \(b) was accepted") {
                XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)")
                XCTAssertTrue("\($0)".contains(damaged), "the message does not name the file: \($0)")
            }
        }
    }

    /// The golden file, written by the format-1 writer: it keeps loading, and says its metadata is
    /// not protected.
    func testGoldenVersion1CheckpointStillLoads() throws {
        let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../golden/checkpoint-v1.safetensors").standardizedFileURL.path
        let c = try Checkpoint.read(golden)
        XCTAssertEqual(c.version, "1")
        XCTAssertFalse(c.metadataProtected)
        XCTAssertTrue(c.note.contains("not covered by the checksum"), c.note)
        XCTAssertEqual(c.progress.globalStep, 2)
        XCTAssertEqual(c.config.model.widths, [1, 3, 5])
        let network = c.config.model.makeNetwork(batch: 2)
        try Checkpoint.apply(c, to: network, optimizer: nil, model: c.config.model)
        XCTAssertEqual(network.parameterCount, 933)
        let stored = try c.file.require("param/classifier.weight").floats ?? []
        let live = network.parameters.first { $0.name == "classifier.weight" }
        XCTAssertEqual(live.map { Array(UnsafeBufferPointer(start: $0.value, count: $0.count)) }, stored)
    }

    /// Format 1 does not protect its metadata, so the values themselves are checked: an edited
    /// stored configuration (re-written as a valid format-1 file, whose checksum covers the data
    /// only) is refused before a network is built, naming the field and the file.
    func testDecodedValuesAreChecked() throws {
        let dir = TempDir("ckpt-values")
        let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../golden/checkpoint-v1.safetensors").standardizedFileURL.path
        let cases: [(key: String, from: String, to: String, needle: String)] = [
            ("dcnet.training", "\"widths\":[1,3,5]", "\"widths\":[1000000000,3,5]", "wider than"),
            ("dcnet.training", "\"widths\":[1,3,5]", "\"widths\":[]", "3 stages"),
            ("dcnet.training", "\"dataset\":\"cifar10\"", "\"dataset\":\"imagenet\"", "--dataset"),
            ("dcnet.training", "\"adamBetas\":[0.9,0.999]", "\"adamBetas\":[0.9]", "adamBetas"),
            ("dcnet.training", "\"epochs\":1,", "\"epochs\":0,", "--epochs"),
            ("dcnet.progress", "\"globalStep\":2", "\"globalStep\":-5", "globalStep"),
            ("dcnet.progress", "\"epoch\":0", "\"epoch\":9", "progress.epoch"),
        ]
        for c in cases {
            var file = try SafeTensorsFile.read(path: golden)
            let value = try XCTUnwrap(file.metadata[c.key])
            XCTAssertTrue(value.contains(c.from), "\(c.key) no longer holds \(c.from): \(value)")
            file.metadata[c.key] = value.replacingOccurrences(of: c.from, with: c.to)
            file.checksumScope = .data
            let edited = dir.file("edited.safetensors")
            try file.write(to: edited)
            XCTAssertThrowsError(try Checkpoint.read(edited), "\(c.to) was accepted") {
                XCTAssertTrue("\($0)".contains(c.needle), "\(c.to): \($0)")
                XCTAssertTrue("\($0)".contains(edited), "\($0)")
            }
        }
    }

    /// A gzip stream that inflates past the limit stops there with an error instead of allocating.
    func testGzipOutputIsCapped() throws {
        let big = Gzip.compress([UInt8](repeating: 7, count: 1 << 20))
        XCTAssertThrowsError(try Gzip.decompress(big, path: "big.gz", limit: 1000)) {
            XCTAssertEqual(($0 as? DataError)?.kind, .tooLarge, "\($0)")
            XCTAssertTrue("\($0)".contains("big.gz"))
        }
        XCTAssertEqual(try Gzip.decompress(big, path: "big.gz", limit: 1 << 20).count, 1 << 20)
    }

    /// Found by scripts/fuzz: a stored negative epoch count (checksum valid) trapped in the progress
    /// check, which built the range 0...epochs, instead of being reported.
    func testNegativeStoredEpochsAreReportedNotATrap() throws {
        let dir = TempDir("ckpt-negative-epochs")
        var config = tinyConfig(tinyModel(widths: [2, 2, 2]))
        config.epochs = -2_147_483_649
        XCTAssertEqual(TrainingProgress().problems(config: config), ["progress.epoch 0 is outside 0...-2147483649"])
        let network = config.model.makeNetwork(batch: 2)
        let path = dir.file("negative.safetensors")
        try Checkpoint.write(
            to: path, network: network, optimizer: Optimizer(config: config, network: network), config: config,
            progress: TrainingProgress())
        XCTAssertThrowsError(try Checkpoint.read(path)) {
            XCTAssertTrue("\($0)".contains("--epochs must be positive"), "\($0)")
        }
    }
}
