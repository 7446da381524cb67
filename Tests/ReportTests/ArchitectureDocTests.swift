import Foundation
import XCTest

/// docs/architecture.md's table "Where each concept lives" against the tree: every file it names is
/// in the folder of its row's target, and every source file and every target folder has a row. A
/// file added, moved or removed without its row fails here instead of misleading a reader.
final class ArchitectureDocTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    struct Row { let line: Int; let targets: [String]; let names: [String] }

    /// The table's rows: targets (comma-separated) and the backticked names of the third column.
    static func conceptRows() throws -> [Row] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        guard let heading = lines.firstIndex(of: "## Where each concept lives") else {
            throw MissingSection()
        }
        var rows: [Row] = []
        for index in (heading + 1)..<lines.count {
            let line = lines[index]
            if line.hasPrefix("## ") { break }
            guard line.hasPrefix("| "), !line.hasPrefix("| concept |") else { continue }
            let columns = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst()
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard columns.count >= 3 else { continue }
            let targets = columns[1].components(separatedBy: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let names = columns[2].components(separatedBy: "`").enumerated().filter { $0.offset % 2 == 1 }.map(
                \.element)
            rows.append(Row(line: index + 1, targets: targets, names: names))
        }
        return rows
    }
    struct MissingSection: Error {}

    static func isSourceFileName(_ name: String) -> Bool {
        [".swift", ".c", ".h"].contains { name.hasSuffix($0) } && !name.contains(" ") && !name.contains("(")
    }

    func testEveryNamedFileExistsInItsTarget() throws {
        let rows = try Self.conceptRows()
        XCTAssertGreaterThan(rows.count, 30)
        let fm = FileManager.default
        for row in rows {
            if row.targets == ["scripts"] {
                for name in row.names where name.contains("/") {
                    let path = String(name.split(separator: " ")[0])
                    XCTAssert(
                        fm.fileExists(atPath: Self.root.appendingPathComponent(path).path),
                        "architecture.md:\(row.line) names \(path), which does not exist")
                }
                continue
            }
            for target in row.targets {
                XCTAssert(
                    fm.fileExists(atPath: Self.root.appendingPathComponent("Sources/\(target)").path),
                    "architecture.md:\(row.line) names target \(target), which has no folder in Sources")
                for name in row.names where Self.isSourceFileName(name) {
                    XCTAssert(
                        fm.fileExists(atPath: Self.root.appendingPathComponent("Sources/\(target)/\(name)").path),
                        "architecture.md:\(row.line) names \(name) in \(target), which is not Sources/\(target)/\(name)"
                    )
                }
            }
        }
    }

    func testEverySourceFileHasARow() throws {
        var named = Set<String>()
        for row in try Self.conceptRows() {
            for target in row.targets {
                for name in row.names where Self.isSourceFileName(name) { named.insert("\(target)/\(name)") }
            }
        }
        let sources = Self.root.appendingPathComponent("Sources")
        let fm = FileManager.default
        let targets = try fm.contentsOfDirectory(atPath: sources.path).filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertGreaterThan(targets.count, 10)
        for target in targets {
            guard let files = fm.enumerator(atPath: sources.appendingPathComponent(target).path) else { continue }
            for case let file as String in files where Self.isSourceFileName(file) {
                XCTAssert(
                    named.contains("\(target)/\(file)"),
                    "Sources/\(target)/\(file) has no row in docs/architecture.md's concept table")
            }
        }
    }
}
