import DCNetMetrics
import Foundation
import TestSupport
import XCTest

@testable import DCNetReport

/// Writes `lines` (one JSON record each) as `<suite>/<run>/<file>`, making the run's directory:
/// a run of a synthetic suite.
func writeRecords(_ lines: [String], run: String, in suite: URL, file: String = MetricsLog.metricsFileName) throws {
    let directory = suite.appendingPathComponent(run)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: directory.appendingPathComponent(file))
}

/// The epoch records of a run as JSON lines.
func epochLines(_ epochs: [EpochRecord]) throws -> [String] {
    try epochs.map { try MetricsRecord.epoch($0).jsonLine() }
}

/// Fails unless `text` contains `part`; the failure shows the whole text.
func assertContains(_ text: String, _ part: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertTrue(text.contains(part), text, file: file, line: line)
}

/// A test case whose tests each get a fresh, empty suite directory, removed after the test.
class SuiteTestCase: XCTestCase {
    private var directory: TempDir!
    /// The suite directory of the running test.
    private(set) var suite: URL!

    override func setUpWithError() throws {
        directory = TempDir(String(describing: type(of: self)))
        suite = URL(fileURLWithPath: directory.path)
    }

    override func tearDownWithError() throws {
        directory = nil
    }
}
