import Foundation
import TestSupport
import XCTest

@testable import DCNetReport

/// The report opens with one row per comparison, and a run still training stays out of the verdicts.
final class VerdictSummaryTests: XCTestCase {
    /// A run directory whose metrics plan `planned` epochs and record these (test, validation) accuracies.
    private func writeRun(_ suite: URL, _ run: String, planned: Int, accuracies: [Double]) throws {
        var lines = [#"{"kind":"config","schema":1,"config":{"epochs":\#(planned)}}"#]
        for (i, a) in accuracies.enumerated() {
            lines.append(
                #"{"kind":"epoch","schema":1,"epoch":\#(i + 1),"train_loss":1,"train_accuracy":0.5,"#
                    + #""test_accuracy":\#(a),"validation_accuracy":\#(a)}"#)
        }
        try writeRecords(lines, run: run, in: suite)
    }

    func testSummaryRowsAndRunsInProgressLeftOut() throws {
        let directory = TempDir("summary")
        let suite = URL(fileURLWithPath: directory.path)
        for (s, final) in [(1, 0.800), (2, 0.802), (3, 0.804)] {
            try writeRun(suite, "base-s\(s)", planned: 2, accuracies: [0.70, final])
        }
        for (s, final) in [(1, 0.790), (2, 0.792)] {
            try writeRun(suite, "dc-s\(s)", planned: 2, accuracies: [0.70, final])
        }
        // Still in its first epoch of two, at a far lower accuracy: it must not enter the verdict.
        try writeRun(suite, "dc-s3", planned: 2, accuracies: [0.30])
        let groups = [
            ExperimentGroup(
                name: "Accuracy", claim: "c", runs: ["base", "dc"], baseline: "base", test: .higherAccuracy),
            ExperimentGroup(
                name: "Missing", claim: "c", runs: ["other", "dc"], baseline: "other", test: .higherAccuracy),
            ExperimentGroup(
                name: "Ghost", claim: "c", runs: ["base", "ghost"], baseline: "base", test: .higherAccuracy),
        ]
        var report = ExperimentReport(suiteDirectory: suite, groups: groups)
        report.replicates = ["base": ["base-s1", "base-s2", "base-s3"], "dc": ["dc-s1", "dc-s2", "dc-s3"]]
        let markdown = try report.write().markdown
        let summary = try XCTUnwrap(markdown.components(separatedBy: "## Verdicts at a glance").dropFirst().first)
            .components(separatedBy: "\n## ")[0]
        // 2 vs 3 seeds (dc-s3 left out): 79.1% ± 0.1 vs 80.2% ± 0.2, difference -1.1 pp ± 0.2: contradicted.
        assertContains(
            summary,
            "| Accuracy | dc vs base | 2 vs 3 | final test accuracy | 79.1% ± 0.1 | 80.2% ± 0.2 | -1.1 pp ± 0.2 | "
                + "**contradicted** |")
        assertContains(summary, "| Missing | — | — | — | — | — | — | not evaluated: baseline `other` missing |")
        assertContains(summary, "| Ghost | ghost vs base | — | — | — | — | — | not evaluated: run missing |")
        assertContains(summary, "Runs still training are left out of the verdicts")
        // The summary comes before the first group's section.
        let summaryAt = try XCTUnwrap(markdown.range(of: "## Verdicts at a glance")).lowerBound
        let groupAt = try XCTUnwrap(markdown.range(of: "## Accuracy")).lowerBound
        XCTAssertLessThan(summaryAt, groupAt)
    }
}
