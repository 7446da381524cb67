import DCNetFormats
import MPI

/// An error every rank of the job knows about (it was agreed through a collective), so each rank
/// can exit normally with it; `rank` is where it happened. Any other error thrown out of a job
/// means the ranks may be out of step, and the job is aborted instead (`AgreedFailure`, from
/// `Communicator.agree`, is the other error every rank knows).
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
        FileSink.standardOutput.writeIgnoringErrors(line + "\n")
    }
    /// Errors are printed by the rank that has them; a closed console is not worth failing over.
    public func error(_ line: String) {
        FileSink.standardError.writeIgnoringErrors("dcnet-dist: " + line + "\n")
    }
}

extension CollectiveWatchdog.Configuration {
    /// The collective watchdog of a dcnet-dist job (`timeout` 0: warn, never end the job): its
    /// messages name the training step and end with how to continue.
    public static func job(timeout: Double) -> Self {
        .init(
            timeout: timeout > 0 ? timeout : nil, program: "dcnet-dist", progressName: "step",
            adviceAfterTimeout: "Continue from the last checkpoint with --resume.")
    }
}

/// Why a step cannot go on on this rank, thrown inside `Communicator.agree`, whose
/// `AgreedFailure` names the rank: the text is the reason alone.
public struct LocalFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
