import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A report, plot or other output file could not be written; the text names the file.
public struct FileWriteError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String

    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }
}

/// Whole-file writes with every POSIX call checked, like the checkpoint writer: a temporary file in
/// the same directory, `write` until done, `fsync`, `close`, `rename` over the target. On a full
/// disk the error names the file and says why, the temporary file is removed and an existing
/// file at the target is left as it was. (`Data.write(to:)` gives no such guarantees, and
/// `FileHandle.write(_:)` traps on Linux when a write fails.)
public enum AtomicFile {
    public static func write(_ text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        guard !base.isEmpty else { throw FileWriteError(path: path, reason: "not a file path") }
        let temporary =
            (directory.isEmpty ? "" : directory + "/") + ".\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FileWriteError(path: path, reason: "cannot create the temporary file \(temporary): \(errorText())")
        }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        if let failure = writeAll(fd, bytes) {
            close(fd)
            throw FileWriteError(path: path, reason: failure)
        }
        // fsync and close report delayed write errors (NFS, quota) that write did not.
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            throw FileWriteError(path: path, reason: "fsync failed: \(errorText(code))")
        }
        guard close(fd) == 0 else { throw FileWriteError(path: path, reason: "close failed: \(errorText())") }
        guard rename(temporary, path) == 0 else {
            throw FileWriteError(path: path, reason: "rename from \(temporary) failed: \(errorText())")
        }
        renamed = true
    }

    private static func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
}

// At file scope: inside `AtomicFile` the name `write` means its own methods.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }

/// Writes every byte to `fd`, retrying after interruptions; nil when done, else what went wrong
/// (shared by the whole-file and the appending writers).
func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> String? {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + done, bytes.count - done) }
        if n < 0 {
            let code = errno
            if code == EINTR { continue }
            return "write failed after \(done) of \(bytes.count) bytes: \(String(cString: strerror(code)))"
        }
        done += n
    }
    return nil
}
