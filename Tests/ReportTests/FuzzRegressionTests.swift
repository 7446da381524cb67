import DCNetMetrics
import Foundation
import XCTest

@testable import DCNetReport

/// Inputs found by scripts/fuzz that trapped the report, minimized: each must now give a report.
final class FuzzRegressionTests: XCTestCase {
    private func metrics(_ lines: [String]) throws -> RunMetrics {
        try MetricsLog.parse(Data((lines.joined(separator: "\n") + "\n").utf8), fileName: "metrics.jsonl")
    }

    /// `"epochs": 1e308` in the untyped stored configuration trapped converting it to Int.
    func testPlannedEpochsOutsideIntAreUnknown() throws {
        for epochs in ["1e308", "-1e308", "9223372036854775808"] {
            let run = try metrics([#"{"kind":"config","schema":1,"config":{"epochs":\#(epochs)}}"#])
            XCTAssertNil(RunSummary(run).epochsPlanned, epochs)
        }
        XCTAssertEqual(
            RunSummary(try metrics([#"{"kind":"config","schema":1,"config":{"epochs":3}}"#])).epochsPlanned, 3)
    }
}
