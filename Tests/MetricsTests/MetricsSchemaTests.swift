import DCNetMetrics
import Foundation
import TestSupport
import XCTest

final class MetricsSchemaTests: XCTestCase {
    static let everyKind: [MetricsRecord] = [
        .config(
            RunConfig(
                run: "tanh",
                config: .object(["epochs": .number(3), "model": .object(["widths": .array([.number(4)])])]),
                commit: "abc", date: "2025-01-01T00:00:00Z", command: "dcnet-dist train", ranks: 2, parameters: 1234)),
        .progress(
            ProgressRecord(
                step: 10, epoch: 1, loss: 2.25, accuracy: 0.125, imagesPerSecond: 300.5, learningRate: 0.05,
                etaSeconds: 12, slowestRank: 1, slowestHost: "node2", slowestExcess: 0.03)),
        .epoch(
            EpochRecord(
                epoch: 1, step: 40, trainLoss: 1.5, trainAccuracy: 0.5, testLoss: 1.25, testAccuracy: 0.55,
                imagesPerSecond: 280, wallSeconds: 60, learningRate: 0.05)),
        .evaluation(EvaluationRecord(step: 45, testLoss: 1.2, testAccuracy: 0.56)),
        .attack(
            AttackRecord(
                method: "pgd", mode: .blackBox, source: "baseline", target: "tanh", epsilonPixels: 8,
                epsilonModel: [0.0625, 0.0625, 0.0625], steps: 7, stepSizePixels: 2.5, cleanAccuracy: 0.8,
                adversarialAccuracy: 0.3, images: 1000, maxPerturbationPixels: 8, seed: UInt64.max,
                date: "2025-01-02T00:00:00Z")),
    ]

    func testEveryKindRoundTripsAndCarriesKindAndSchema() throws {
        for record in Self.everyKind {
            let line = try record.jsonLine()
            XCTAssertFalse(line.contains("\n"))
            XCTAssertTrue(line.contains(#""kind":"\#(record.kind)""#), line)
            XCTAssertTrue(line.contains(#""schema":1"#), line)
            XCTAssertEqual(try MetricsRecord(jsonLine: line), record)
        }
    }

    /// The names scripts/ (Python) and Tests/integration/*.sh read, and that files written before
    /// the schema existed use.
    func testFieldNamesAreThoseOfVersion1() throws {
        let progress = try Self.everyKind[1].jsonLine()
        for key in ["step", "epoch", "loss", "accuracy", "images_per_s", "lr", "eta_s", "slowest_rank", "slowest_host"]
        {
            XCTAssertTrue(progress.contains("\"\(key)\":"), "\(key) missing from \(progress)")
        }
        let attack = try Self.everyKind[4].jsonLine()
        for key in [
            "epsilon_pixels", "epsilon_model", "step_size_pixels", "clean_accuracy", "adversarial_accuracy",
            "max_perturbation_pixels", "source", "target", "seed",
        ] {
            XCTAssertTrue(attack.contains("\"\(key)\":"), "\(key) missing from \(attack)")
        }
    }

    /// Lines written before the `schema` field existed (sorted keys, as JSONSerialization wrote them).
    func testALineWithoutSchemaIsVersion1() throws {
        let old = [
            #"{"accuracy":0.125,"epoch":1,"eta_s":12,"images_per_s":300.5,"kind":"progress","loss":2.25,"lr":0.05,"#
                + #""slowest_excess":0.03,"slowest_host":"node2","slowest_rank":1,"step":10}"#,
            #"{"kind":"evaluation","step":45,"test_accuracy":0.56,"test_loss":1.2}"#,
        ]
        XCTAssertEqual(try MetricsRecord(jsonLine: old[0]), Self.everyKind[1])
        XCTAssertEqual(try MetricsRecord(jsonLine: old[1]), Self.everyKind[3])
    }

    func testAFutureSchemaIsRefusedNamingFileAndLine() throws {
        let text =
            try Self.everyKind[0].jsonLine() + "\n"
            + #"{"kind":"epoch","schema":2,"epoch":1,"test_accuracy":0.5}"# + "\n"
        XCTAssertThrowsError(try MetricsReader.parse(Data(text.utf8), fileName: "run/metrics.jsonl")) { error in
            XCTAssertEqual(error as? MetricsLogError, .unsupportedSchema(file: "run/metrics.jsonl", line: 2, schema: 2))
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("run/metrics.jsonl:2: schema version 2 is not supported"), message)
            XCTAssertTrue(message.contains("newer dcnet-dist"), message)
        }
        // A complete record of a newer writer is not mistaken for a line cut short by a kill.
        let last = #"{"kind":"epoch","schema":2,"epoch":1}"#
        XCTAssertThrowsError(try MetricsReader.parse(Data(last.utf8), fileName: "m.jsonl")) { error in
            XCTAssertEqual(error as? MetricsLogError, .unsupportedSchema(file: "m.jsonl", line: 1, schema: 2))
        }
        XCTAssertThrowsError(try MetricsRecord(jsonLine: #"{"kind":"epoch","schema":0,"epoch":1}"#))
    }

    func testUnknownKindsAreKeptAndTruncatedLastLinesSkipped() throws {
        let text =
            #"{"kind":"histogram","values":[1,2]}"# + "\n" + (try Self.everyKind[2].jsonLine()) + "\n"
            + #"{"kind":"epoch","epoch":2,"test_acc"#
        let file = try MetricsReader.parse(Data(text.utf8), fileName: "m.jsonl")
        XCTAssertEqual(file.records, [.unknown(kind: "histogram"), Self.everyKind[2]])
        XCTAssertEqual(file.lines.map(\.line), [1, 2])
        XCTAssertEqual(file.warnings.count, 1)
        XCTAssertTrue(file.warnings[0].hasPrefix("m.jsonl:3: skipped a truncated last line"), file.warnings[0])
    }

    func testNonFiniteLossesSurviveTheRoundTrip() throws {
        let diverged = MetricsRecord.progress(ProgressRecord(step: 3, loss: .nan, accuracy: .infinity))
        let line = try diverged.jsonLine()
        XCTAssertTrue(line.contains(#""loss":"NaN""#), line)
        guard case .progress(let read) = try MetricsRecord(jsonLine: line) else { return XCTFail(line) }
        XCTAssertEqual(read.loss?.isNaN, true)
        XCTAssertEqual(read.accuracy, .infinity)
    }

    func testWriterAppendsAndTheReaderReadsEveryKind() throws {
        let directory = TempDir("metrics")
        let path = directory.file("run/metrics.jsonl")
        try MetricsWriter(path: path).append(Array(Self.everyKind.prefix(2)))
        // A resumed run opens the file again and appends.
        let resumed = try MetricsWriter(path: path)
        for record in Self.everyKind.dropFirst(2) { try resumed.append(record) }
        let file = try MetricsReader.read(path: path)
        XCTAssertEqual(file.records, Self.everyKind)
        XCTAssertEqual(file.lines.map(\.line), Array(1...Self.everyKind.count))
    }

    func testWriteErrorsNameTheFile() throws {
        let directory = FileManager.default.temporaryDirectory.path
        XCTAssertThrowsError(try MetricsWriter(path: directory)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(directory): cannot open"), "\(error)")
        }
        // A full disk: FileHandle.write would trap here instead of throwing.
        guard FileManager.default.fileExists(atPath: "/dev/full") else { return }
        let full = try MetricsWriter(path: "/dev/full")
        XCTAssertThrowsError(try full.append(Self.everyKind[3])) { error in
            XCTAssertTrue("\(error)".hasPrefix("/dev/full: write failed"), "\(error)")
        }
    }

    func testMissingFileIsUnreadable() {
        XCTAssertThrowsError(try MetricsReader.read(path: "/nonexistent/metrics.jsonl")) { error in
            guard case .unreadable(let file, _)? = error as? MetricsLogError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "/nonexistent/metrics.jsonl")
        }
    }
}
