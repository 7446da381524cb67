import XCTest
final class MPITestsPlaceholder: XCTestCase { func testNothing() {} }
