import DCNetFormats
import Foundation
import XCTest

/// The full-disk case needs a small file system and root: Tests/integration/fullfs.sh.
final class AtomicFileTests: XCTestCase {
    func testWritesReplacesAndLeavesNoTemporaryFile() throws {
        let dir = NSTemporaryDirectory() + "/dcnet-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/report.md"
        try AtomicFile.write("first", to: path)
        try AtomicFile.write("second\n", to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "second\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["report.md"])
    }

    func testAFailureNamesTheFileAndSaysWhy() {
        let path = "/nonexistent-\(UUID().uuidString)/report.md"
        XCTAssertThrowsError(try AtomicFile.write("x", to: path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(path + ": "), text)
            XCTAssertTrue(text.contains("No such file or directory"), text)
        }
    }
}
