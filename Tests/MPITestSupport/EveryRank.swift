import MPI

/// A rank-local block failed on some ranks: thrown on every rank, so each fails the test at once
/// instead of the healthy ranks waiting in the next collective for the failed ones.
public struct RankLocalFailure: Error, CustomStringConvertible {
    /// The ranks whose block threw, in ascending order.
    public let failedRanks: [Int]
    /// This rank's own error, if its block was one of those that threw.
    public let localError: (any Error)?
    public let what: String

    public var description: String {
        let ranks = failedRanks.map(String.init).joined(separator: ", ")
        let local = localError.map { ": \($0)" } ?? " (its error is in that rank's output)"
        return "\(what) failed on rank(s) \(ranks) of the job\(local)"
    }
}

extension Communicator {
    /// Runs `body` on this rank (every rank must call this, like a collective), then lets every
    /// rank learn whether any rank's `body` threw: if one did, every rank throws `RankLocalFailure`
    /// naming the failed ranks. Wrap rank-local code that can throw (files, a rank-0-only check)
    /// when collectives follow it.
    public func assertOnEveryRank<T>(_ what: String = "a rank-local step", _ body: () throws -> T) throws -> T {
        let result = Result { try body() }
        var localError: (any Error)? = nil
        if case .failure(let error) = result { localError = error }
        let flags = try allGather([Int32(localError == nil ? 0 : 1)])
        let failed = flags.indices.filter { flags[$0] != 0 }
        guard failed.isEmpty else { throw RankLocalFailure(failedRanks: failed, localError: localError, what: what) }
        return try result.get()
    }
}
