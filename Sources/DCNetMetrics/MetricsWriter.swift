import DCNetFormats
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Appends records as JSON lines through a `FileSink` on an `O_APPEND` descriptor: a failed write
/// (disk full, quota) is an error naming the file. `O_APPEND` also keeps whole lines from several
/// writers (a resumed run, two attack commands) from overwriting each other.
public final class MetricsWriter {
    public let path: String
    private let sink: FileSink

    /// Opens `path` for appending, creating it and its directory if needed.
    public init(path: String) throws {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw FileWriteError(
                    path: path, reason: "cannot create the directory: \(error.localizedDescription)",
                    kind: .createDirectory)
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FileWriteError(
                path: path, reason: "cannot open for appending: \(String(cString: strerror(errno)))", kind: .create)
        }
        sink = FileSink(descriptor: fd, path: path)
    }

    deinit { close(sink.descriptor) }

    public func append(_ record: MetricsRecord) throws { try append([record]) }

    /// All records in one `write`, so that a batch is not interleaved with another writer's lines.
    public func append(_ records: [MetricsRecord]) throws {
        var text = ""
        for record in records {
            do {
                text += try record.jsonLine() + "\n"
            } catch {
                throw FileWriteError(
                    path: path, reason: "cannot encode a \(record.kind) record: \(error)", kind: .encode)
            }
        }
        try sink.write(text)
    }

    /// Opens, appends and closes: for commands that write once (`dcnet-dist attack`).
    public static func append(_ records: [MetricsRecord], to path: String) throws {
        try MetricsWriter(path: path).append(records)
    }
}
