import Foundation
import TestSupport
import XCTest

@testable import DCNetMetrics

/// Event files as TensorBoard reads them: TFRecord framing with masked CRC-32C, Event/Summary
/// protobufs, resume without repeated steps, and a torn last record. The real reader and server
/// read the files in Tests/integration/tensorboard.sh.
final class TensorBoardTests: XCTestCase {
    func testCRC32CAgainstKnownValues() {
        // The standard check value of CRC-32C, and TensorFlow's mask of the empty string's CRC (0).
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.masked([UInt8]()), 0xA282_EAD8)
    }

    private func epoch(_ n: Int, step: Int, accuracy: Double) -> MetricsRecord {
        var e = EpochRecord(epoch: n, step: step, trainLoss: 1 / Double(n), testAccuracy: accuracy)
        e.operatorRadius = ["stage1.1.conv": 0.5 * Double(n)]
        e.patchNorm = ["stage1.1.conv": 2]
        return .epoch(e)
    }

    func testScalarsRoundTripThroughAnEventFile() throws {
        let dir = TempDir("tb-roundtrip")
        let run = try TensorBoardRun(directory: dir.path, resuming: false)
        try run.append(
            [
                .progress(
                    ProgressRecord(
                        step: 10, loss: 2.5, accuracy: 0.25, learningRate: 0.1, exposedCommunicationShare: 0.03)),
                epoch(1, step: 20, accuracy: 0.5),
            ], wallTime: 1_700_000_000.25)
        let files = TensorBoardEvents.eventFiles(in: dir.path)
        XCTAssertEqual(files.count, 1)
        XCTAssertTrue(files[0].contains("events.out.tfevents.1700000000."), files[0])
        let (scalars, damaged) = try TensorBoardEvents.read(files[0])
        XCTAssertFalse(damaged)
        let byTag = Dictionary(uniqueKeysWithValues: scalars.map { ($0.tag, $0) })
        XCTAssertEqual(byTag["train/loss"]?.step, 10)
        XCTAssertEqual(byTag["train/loss"]?.value, 2.5)
        XCTAssertEqual(byTag["speed/exposed_communication_share"]!.value, 0.03, accuracy: 1e-7)
        XCTAssertEqual(byTag["epoch/test_accuracy"]?.step, 20)
        XCTAssertEqual(byTag["operator_radius/stage1.1.conv"]?.value, 0.5)
        XCTAssertEqual(byTag["patch_norm/stage1.1.conv"]?.value, 2)
        XCTAssertEqual(byTag["train/loss"]?.wallTime, 1_700_000_000.25)
        XCTAssertNil(byTag["epoch/validation_accuracy"], "absent measurements write no scalar")
    }

    /// A resumed run writes a second file into the same directory and skips the steps the first one
    /// has; a run that is not resuming refuses a directory that holds one.
    func testResumeAppendsWithoutRepeatingSteps() throws {
        let dir = TempDir("tb-resume")
        let first = try TensorBoardRun(directory: dir.path, resuming: false)
        try first.append([epoch(1, step: 10, accuracy: 0.4), epoch(2, step: 20, accuracy: 0.5)], wallTime: 1)
        XCTAssertThrowsError(try TensorBoardRun(directory: dir.path, resuming: false)) { error in
            XCTAssertTrue("\(error)".contains("already holds a TensorBoard run"), "\(error)")
        }
        // Resumed from a checkpoint at step 10: epoch 2 is recomputed, then epoch 3 is new.
        let resumed = try TensorBoardRun(directory: dir.path, resuming: true)
        try resumed.append([epoch(2, step: 20, accuracy: 0.5), epoch(3, step: 30, accuracy: 0.6)], wallTime: 2)
        let files = TensorBoardEvents.eventFiles(in: dir.path)
        XCTAssertEqual(files.count, 2)
        let steps = try files.flatMap { try TensorBoardEvents.read($0).scalars }
            .filter { $0.tag == "epoch/test_accuracy" }.map(\.step)
        XCTAssertEqual(steps, [10, 20, 30])
    }

    /// A run killed mid-write: every whole record before the torn one is still read.
    func testTornLastRecordKeepsTheWholeOnes() throws {
        let dir = TempDir("tb-torn")
        let run = try TensorBoardRun(directory: dir.path, resuming: false)
        try run.append((1...5).map { epoch($0, step: 10 * $0, accuracy: 0.1 * Double($0)) }, wallTime: 1)
        let file = TensorBoardEvents.eventFiles(in: dir.path)[0]
        let whole = try TensorBoardEvents.read(file).scalars
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: file))
        for cut in [1, 5, 13] {
            let torn = dir.file("torn-\(cut).tfevents")
            FileManager.default.createFile(atPath: torn, contents: bytes.dropLast(cut))
            let (scalars, damaged) = try TensorBoardEvents.read(torn)
            XCTAssertTrue(damaged)
            XCTAssertEqual(scalars, Array(whole.dropLast()), "cut \(cut) bytes")
        }
        var flipped = [UInt8](bytes)
        flipped[flipped.count - 6] ^= 1
        FileManager.default.createFile(atPath: dir.file("flipped.tfevents"), contents: Data(flipped))
        XCTAssertEqual(try TensorBoardEvents.read(dir.file("flipped.tfevents")).scalars, Array(whole.dropLast()))
    }
}
