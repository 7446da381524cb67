import DCNetMetrics
import Foundation
import XCTest

@testable import DCNetReport

/// The header's "Measured time" and the "Time per run" appendix, on a synthetic suite.
final class MeasuredTimeTests: SuiteTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        // a: 600 + 900 + 300 s = 30 min; b: 2 × 1,200 s = 40 min.
        try writeRun(
            "a", [epoch(1, wall: 600, speed: 100), epoch(2, wall: 900, speed: 200), epoch(3, wall: 300, speed: 300)])
        try writeRun("b", [epoch(1, wall: 1200, speed: 50), epoch(2, wall: 1200, speed: 70)])
        // c was interrupted in epoch 3 and resumed from a checkpoint inside epoch 2: epoch 2 is recorded
        // twice, the last record counts (100 + 500 + 400 s = 1,000 s, not 1,999 s).
        try writeRun(
            "c",
            [
                epoch(1, wall: 100, speed: 10), epoch(2, wall: 999, speed: 20), configLine("c"),
                epoch(2, wall: 500, speed: 30),
                epoch(3, wall: 400, speed: 40),
            ])
        // grid is a select step's run that no group names; chosen is a link to it (absolute path), and
        // c-link one to c (relative): each directory counts once, under its own name.
        try writeRun("grid", [epoch(1, wall: 120, speed: 80), epoch(2, wall: 180, speed: 90)])
        try FileManager.default.createSymbolicLink(
            atPath: suite.appendingPathComponent("chosen").path,
            withDestinationPath: suite.appendingPathComponent("grid").path)
        try FileManager.default.createSymbolicLink(
            atPath: suite.appendingPathComponent("c-link").path, withDestinationPath: "c")
        // Another run directory outside the groups: part of the suite's time.
        try writeRun("stray", [epoch(1, wall: 360, speed: 5)])
        // Not a run: no metrics.jsonl.
        try FileManager.default.createDirectory(
            at: suite.appendingPathComponent("data-train-500"), withIntermediateDirectories: true)

        // Attacks: a's PGD job was rerun (1,500 s replaces 1,000 s); a's features export too (60 s replaces 90 s).
        let timings = [
            "train\ta\t\t\t1900\t2026-12-01T06:00:00Z",
            "attack\ta\tpgd\tb\t1000\t2026-12-01T06:10:00Z",
            "attack\ta\tfgsm\tb\t200\t2026-12-01T06:11:00Z",
            "attack\ta\tpgd\tb\t1500\t2026-12-01T06:40:00Z",
            "attack\tb\tpgd\t\t700\t2026-12-01T06:52:00Z",
            "features\ta\t\t\t90\t2026-12-01T06:53:00Z",
            "features\tb\t\t\t30\t2026-12-01T06:54:00Z",
            "attack\tb\tfgsm\t\tsoon\t2026-12-01T06:55:00Z",
            "features\ta\t\t\t60\t2026-12-01T06:56:00Z",
            "",
        ]
        try Data(timings.joined(separator: "\n").utf8).write(to: suite.appendingPathComponent("timings.tsv"))
    }

    private func makeReport() -> ExperimentReport {
        var report = ExperimentReport(
            suiteDirectory: suite,
            groups: [
                ExperimentGroup(name: "ops", claim: "c", runs: ["a", "b", "c", "c-link"], test: .fasterConvergence),
                ExperimentGroup(name: "select", claim: "c", runs: ["a", "chosen"], test: .higherAccuracy),
            ])
        report.budget = "3 epochs on 2 cores."
        report.generatedAt = Date(timeIntervalSince1970: 1_700_000_000)
        return report
    }

    func testHeaderStatesTheMeasuredTime() throws {
        let markdown = try makeReport().write().markdown
        // Training: 1,800 + 2,400 + 1,000 + 300 (grid, once for chosen) + 360 (stray) = 5,860 s = 1.63 h.
        // Attacks: 1,500 + 200 + 700 = 2,400 s = 0.67 h; features: 60 + 30 = 90 s = 1.5 min.
        // Total: 8,350 s = 2.32 h.
        assertContains(
            markdown,
            "- **Measured time:** training 1.63 h (5 runs, 1 of them in no group of the report) + attacks 0.67 h "
                + "(3 jobs) + feature export 1.5 min (2 exports) = **2.32 h**. Wall times on the machine that ran "
                + "them, slowed by anything else running there.")
        assertContains(markdown, "1 malformed line of `timings.tsv` ignored (line 8).")
        XCTAssertFalse(markdown.contains("without a `wall_s` record"), markdown)
    }

    func testTimePerRunCountsEachDirectoryOnce() throws {
        let markdown = try makeReport().write().markdown
        let table = try XCTUnwrap(markdown.range(of: "## Time per run")).lowerBound
        let rows = markdown[table...].split(separator: "\n").filter { $0.hasPrefix("| ") }.map(String.init)
        XCTAssertEqual(
            rows,
            [
                "| Run | Epochs | Training (min) | Images/s (median) |",
                "| a | 3 | 30.0 | 200.0 |",
                "| b | 2 | 40.0 | 60.0 |",
                "| c (also c-link: a link) | 3 | 16.7 | 30.0 |",
                "| grid (also chosen: a link) | 2 | 5.0 | 85.0 |",
                "| stray (in no group) | 1 | 6.0 | 5.0 |",
            ], markdown)
    }

    func testWithoutTimingsFileTrainingIsTheTotal() throws {
        try FileManager.default.removeItem(at: suite.appendingPathComponent("timings.tsv"))
        let markdown = try makeReport().write().markdown
        assertContains(
            markdown,
            "- **Measured time:** training 1.63 h (5 runs, 1 of them in no group of the report) = **1.63 h**; "
                + "attacks and feature export not recorded (no `timings.tsv`: an older suite).")
        XCTAssertFalse(markdown.contains("malformed"), markdown)
    }

    func testEpochsWithoutWallTimeAreNamed() throws {
        try writeRun("b", [epoch(1, wall: 1200, speed: 50), epoch(2, wall: nil, speed: 70)])
        let markdown = try makeReport().write().markdown
        // b now has 1,200 s: 5,860 − 1,200 = 4,660 s = 1.29 h.
        assertContains(markdown, "training 1.29 h (5 runs")
        assertContains(markdown, "1 epoch without a `wall_s` record not counted.")
        assertContains(markdown, "| b | 2 | 20.0 (1 epoch without `wall_s`) | 60.0 |")
    }

    func testTimingsParseKeepsTheLastLineOfARepeatedJob() {
        let timings = SuiteTimings.parse(
            "attack\tx\tbim-10\ty z\t10\td1\nattack\tx\tbim-10\ty\t20\td2\nattack\tx\tbim-10\ty z\t30\td3\n"
                + "attack\tx\tbim-10\ty z\t-1\td4\nbogus\tx\t\t\t1\td5\nfeatures\t\t\t\t1\td6\ntrain\tx\t\t\t5\n\n")
        XCTAssertEqual(timings.jobs(.attack).map(\.seconds), [30, 20])
        XCTAssertEqual(timings.jobs(.attack).map(\.date), ["d3", "d2"])
        XCTAssertEqual(timings.seconds(.attack), 50)
        XCTAssertEqual(timings.malformedLines, [4, 5, 6, 7])
    }

    func testBudgetEndingWithAPeriodStartsANewSentence() {
        XCTAssertEqual(
            ExperimentReport.budgetText("3 epochs.", ["completed epochs per run: 3", "configured epochs: 3"]),
            "3 epochs. Completed epochs per run: 3; configured epochs: 3.")
        XCTAssertEqual(
            ExperimentReport.budgetText("3 epochs", ["completed epochs per run: 3"]),
            "3 epochs; completed epochs per run: 3")
        XCTAssertEqual(ExperimentReport.budgetText("3 epochs.", []), "3 epochs.")
        XCTAssertEqual(ExperimentReport.budgetText(nil, ["configured epochs: 3"]), "configured epochs: 3")
        XCTAssertEqual(ExperimentReport.budgetText(nil, []), "not recorded")
    }

    func testBudgetInTheHeaderHasNoPeriodSemicolon() throws {
        let markdown = try makeReport().write().markdown
        assertContains(
            markdown, "- **Budget:** 3 epochs on 2 cores. Completed epochs per run: 2–3; configured epochs: 3.\n")
        XCTAssertFalse(markdown.contains(".;"), markdown)
    }

    // MARK: - Helpers

    private func configLine(_ run: String) -> String {
        #"{"kind":"config","run":"\#(run)","config":{"epochs":3,"model":"cnn9"},"commit":"abc123","#
            + #""date":"2026-12-01T06:00:00Z","command":"dcnet-dist train"}"#
    }

    private func epoch(_ n: Int, wall: Double?, speed: Double) throws -> String {
        let record = EpochRecord(
            epoch: n, step: n * 100, trainLoss: 2.0 - 0.2 * Double(n), trainAccuracy: 0.3 + 0.1 * Double(n),
            testLoss: 1.5, testAccuracy: 0.3 + 0.1 * Double(n), imagesPerSecond: speed, wallSeconds: wall)
        return try MetricsRecord.epoch(record).jsonLine()
    }

    private func writeRun(_ run: String, _ records: [String]) throws {
        try writeRecords([configLine(run)] + records, run: run, in: suite)
    }
}
