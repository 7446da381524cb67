import XCTest

@testable import DCNetReport

/// A result that should have been one comparison and was something else: the test fails with the
/// outcome it got (a skip would hide an evaluator that stopped comparing).
struct UnexpectedOutcome: Error, CustomStringConvertible {
    let outcome: String
    var description: String { "expected one comparison, got \(outcome)" }
}

/// The one comparison of `result`, or a failure naming what the evaluator returned instead.
func singleComparison(_ result: ClaimResult, file: StaticString = #filePath, line: UInt = #line) throws -> Comparison {
    guard case .comparisons(let comparisons) = result.outcome, comparisons.count == 1 else {
        let error = UnexpectedOutcome(outcome: "\(result.outcome)")
        XCTFail(error.description, file: file, line: line)
        throw error
    }
    return comparisons[0]
}
