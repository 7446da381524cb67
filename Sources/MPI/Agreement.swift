#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error every rank of the job knows about (it was agreed through a collective), so each rank
/// can exit normally with it; `rank` is where it happened. Any other error thrown out of a job
/// means the ranks may be out of step, and the job is aborted instead.
public struct JobError: Error, CustomStringConvertible {
    public let rank: Int
    public let message: String
    public init(rank: Int, _ message: String) { self.rank = rank; self.message = message }
    public var description: String { "rank \(rank): \(message)" }
}

/// Rank 0 prints; everyone else stays quiet (one place for it, as in llm.c).
public struct Console: Sendable {
    public let rank: Int
    public init(rank: Int) { self.rank = rank }
    public func print(_ line: String) {
        guard rank == 0 else { return }
        writeLine(line, to: STDOUT_FILENO)
    }
    /// Errors are printed by the rank that has them.
    public func error(_ line: String) {
        writeLine("dcnet-dist: " + line, to: STDERR_FILENO)
    }
    private func writeLine(_ line: String, to fd: Int32) {
        var bytes = Array((line + "\n").utf8)
        var start = 0
        while start < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + start, $0.count - start) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }  // a closed console is not worth failing the job over
            start += n
        }
    }
}

extension Communicator {
    /// Every rank runs `body` and reports whether it succeeded; all learn the first failing rank.
    /// This is the collective that keeps ranks from waiting on one that has already given up.
    public func agree(console: Console, what: String, _ body: () throws -> Void) throws {
        var failed: Int32 = 0
        do {
            try body()
        } catch {
            console.error("rank \(rank): \(what): \(error)")
            failed = Int32(rank + 1)
        }
        watchdog?.enter(what)
        let worst = try allReduce(failed, op: .max)
        if worst > 0 {
            throw JobError(rank: Int(worst - 1), "\(what) failed (the message above from rank \(worst - 1) says why)")
        }
    }
}
