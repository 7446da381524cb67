import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A metrics or attacks file could not be written.
public struct MetricsWriteError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String

    public var description: String { "\(path): \(reason)" }
}

/// Appends records as JSON lines. POSIX `write` on an `O_APPEND` descriptor rather than
/// `FileHandle`: `FileHandle.write(_:)` traps on Linux when the write fails (disk full, quota),
/// which would kill a training run without saying which file; here the error names the file.
/// `O_APPEND` also keeps whole lines from several writers (a resumed run, two attack commands)
/// from overwriting each other.
public final class MetricsWriter {
    public let path: String
    private let descriptor: Int32

    /// Opens `path` for appending, creating it and its directory if needed.
    public init(path: String) throws {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw MetricsWriteError(
                    path: path, reason: "cannot create the directory: \(error.localizedDescription)")
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw MetricsWriteError(
                path: path, reason: "cannot open for appending: \(String(cString: strerror(errno)))")
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    public func append(_ record: MetricsRecord) throws { try append([record]) }

    /// All records in one `write`, so that a batch is not interleaved with another writer's lines.
    public func append(_ records: [MetricsRecord]) throws {
        var text = ""
        for record in records {
            do {
                text += try record.jsonLine() + "\n"
            } catch {
                throw MetricsWriteError(path: path, reason: "cannot encode a \(record.kind) record: \(error)")
            }
        }
        let bytes = Array(text.utf8)
        if let failure = writeAll(descriptor, bytes) { throw MetricsWriteError(path: path, reason: failure) }
    }

    /// Opens, appends and closes: for commands that write once (`dcnet-dist attack`).
    public static func append(_ records: [MetricsRecord], to path: String) throws {
        try MetricsWriter(path: path).append(records)
    }
}
