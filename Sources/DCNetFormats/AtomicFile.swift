import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What went wrong while writing a file.
public enum WriteErrorKind: String, Hashable, Sendable {
    case invalidPath, createDirectory, create, write, sync, close, rename, encode
}
/// A file we write (a checkpoint, a report, a metrics line) could not be written; the text names
/// the file and says why.
public typealias FileWriteError = FileError<WriteErrorKind>

extension FileError where K == WriteErrorKind {
    public init(path: String, reason: String, kind: WriteErrorKind = .write) {
        self.init(kind, path: path, reason)
    }
    public var reason: String { message }
}

/// An open file descriptor written with every byte accounted for: POSIX `write` until done,
/// retrying after interruptions, each failure a `FileWriteError` naming `path`. Not
/// `FileHandle.write(_:)`, which traps on Linux when a write fails (a full disk, a closed pipe)
/// and would end a training run without saying which file.
public struct FileSink: Sendable {
    public let descriptor: Int32
    /// The file named in errors.
    public let path: String

    public init(descriptor: Int32, path: String) { self.descriptor = descriptor; self.path = path }

    public static let standardOutput = FileSink(descriptor: STDOUT_FILENO, path: "<stdout>")
    public static let standardError = FileSink(descriptor: STDERR_FILENO, path: "<stderr>")

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        guard var p = buffer.baseAddress else { return }
        var left = buffer.count
        while left > 0 {
            let n = posixWrite(descriptor, p, min(left, 1 << 30))
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                throw FileWriteError(
                    path: path,
                    reason: "write failed after \(buffer.count - left) of \(buffer.count) bytes: \(errorText(code))")
            }
            if n == 0 { throw FileWriteError(path: path, reason: "write returned 0 (disk full?)") }
            p += n; left -= n
        }
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
    public func write(_ text: String) throws { try write(Array(text.utf8)) }

    /// For messages to a terminal or log: a failure to write one has nowhere to be reported.
    public func writeIgnoringErrors(_ text: String) { try? write(text) }
}

/// Whole-file writes that never leave a partial file at the target: a temporary file in the same
/// directory, the content written through a `FileSink`, `fsync`, `close`, `rename` over the
/// target, `fsync` of the directory (so the rename survives a crash). On any error (a full disk
/// among them) the error names the file and says why, the temporary file is removed and an
/// existing file at the target is left as it was. (`Data.write(to:options: .atomic)` checks none
/// of these calls and does not sync.)
public enum AtomicFile {
    public static func write(_ text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { try $0.write(bytes) }
    }

    /// `body` writes the whole content; the file appears at `path` only when it returns.
    public static func write(to path: String, _ body: (FileSink) throws -> Void) throws {
        let directory: String, base: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
            base = String(path[path.index(after: slash)...])
        } else {
            directory = "."; base = path
        }
        guard !base.isEmpty else { throw FileWriteError(path: path, reason: "not a file path", kind: .invalidPath) }
        let temporary =
            (directory == "/" ? "" : directory) + "/.\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FileWriteError(
                path: path, reason: "cannot create the temporary file \(temporary): \(errorText())", kind: .create)
        }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            try body(FileSink(descriptor: fd, path: path))
        } catch {
            close(fd)
            throw error
        }
        // fsync and close report delayed write errors (NFS, quota) that write did not.
        guard fsync(fd) == 0 else {
            let code = errno
            close(fd)
            throw FileWriteError(path: path, reason: "fsync failed: \(errorText(code))", kind: .sync)
        }
        guard close(fd) == 0 else {
            throw FileWriteError(path: path, reason: "close failed: \(errorText())", kind: .close)
        }
        guard rename(temporary, path) == 0 else {
            throw FileWriteError(path: path, reason: "rename from \(temporary) failed: \(errorText())", kind: .rename)
        }
        renamed = true
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            let rc = fsync(directoryDescriptor)
            let code = errno
            close(directoryDescriptor)
            // EINVAL: file systems that cannot sync directories; the rename itself succeeded.
            if rc != 0 && code != EINVAL {
                throw FileWriteError(
                    path: path, reason: "fsync of the directory \(directory) failed: \(errorText(code))", kind: .sync)
            }
        }
    }
}

func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

// At file scope: inside `FileSink` the name `write` means its own methods.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, buffer, count)
    #else
    Darwin.write(fd, buffer, count)
    #endif
}
