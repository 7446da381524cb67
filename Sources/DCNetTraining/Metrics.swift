import Foundation

/// Appends JSON lines (`{"kind": ...}`) to the metrics file; rank 0 only. The format is read back by
/// DCNetReport's `MetricsLog`.
final class MetricsWriter {
    let path: String
    private let handle: FileHandle

    init(path: String) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CheckpointError(path: path, message: "cannot create the metrics file")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw CheckpointError(path: path, message: "cannot open the metrics file for writing")
        }
        handle = h
        handle.seekToEndOfFile()
    }

    func write(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        handle.write(data + Data("\n".utf8))
    }
    deinit { try? handle.close() }
}
