import Foundation

/// A fresh directory under /tmp, removed with its contents when the object goes away.
public final class TempDir {
    public let path: String

    /// `tag` names the directory (`/tmp/dcnet-TAG-XXXXXX`), so a leftover one tells which test made it.
    public init(_ tag: String = "test") {
        var template = Array("/tmp/dcnet-\(tag)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed for /tmp/dcnet-\(tag)-XXXXXX")
        path = String(cString: p!)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// Writes `bytes` to the file `name` inside the directory, replacing it.
    public func write(_ name: String, _ bytes: [UInt8]) {
        let full = file(name)
        precondition(FileManager.default.createFile(atPath: full, contents: Data(bytes)), "cannot write \(full)")
    }

    /// Creates the subdirectory `name` (no error if it exists).
    public func mkdir(_ name: String) {
        try! FileManager.default.createDirectory(atPath: file(name), withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
