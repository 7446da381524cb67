/// A step that failed on some ranks, known to every rank of the communicator (it was agreed
/// through a collective), so each rank can stop with it in the same place instead of the healthy
/// ranks waiting in the next collective for the failed ones.
public struct AgreedFailure: Error, CustomStringConvertible, Sendable {
    /// What was being done (`agree`'s `what`).
    public let what: String
    /// Every rank whose body threw, lowest rank first, with the text of its error.
    public let failures: [(rank: Int, message: String)]
    /// The ranks of `failures`, ascending.
    public var ranks: [Int] { failures.map(\.rank) }

    public init(what: String, failures: [(rank: Int, message: String)]) {
        self.what = what
        self.failures = failures.sorted { $0.rank < $1.rank }
    }

    /// "WHAT failed on rank 1: MESSAGE"; ranks with the same message share a line.
    public var description: String {
        var groups: [(ranks: [Int], message: String)] = []
        for failure in failures {
            if let index = groups.firstIndex(where: { $0.message == failure.message }) {
                groups[index].ranks.append(failure.rank)
            } else {
                groups.append(([failure.rank], failure.message))
            }
        }
        func rankList(_ ranks: [Int]) -> String {
            (ranks.count == 1 ? "rank " : "ranks ") + ranks.map(String.init).joined(separator: ", ")
        }
        if groups.count == 1 { return "\(what) failed on \(rankList(groups[0].ranks)): \(groups[0].message)" }
        return "\(what) failed on \(rankList(ranks)):"
            + groups.map { "\n  \(rankList($0.ranks)): \($0.message)" }.joined()
    }
}

extension Communicator {
    /// Runs `body` on this rank (every rank calls it, like a collective) and returns its value when
    /// it succeeded on every rank. When it threw on any rank, every rank throws the same
    /// `AgreedFailure`, naming each failing rank, lowest first, with its error's text.
    ///
    /// The path where all succeed costs one small all-reduce; the messages are gathered only after a
    /// failure, in a second collective that every rank then knows to join.
    public func agree<T>(_ what: String, _ body: () throws -> T) throws -> T {
        try agree(what, vote: 0, body).value
    }

    /// `agree`, also returning the largest of the ranks' `vote`s, carried in the same all-reduce
    /// (a decision every rank must take together, such as a stop request).
    public func agree<T>(_ what: String, vote: Int32, _ body: () throws -> T) throws -> (value: T, vote: Int32) {
        let result = Result { try body() }
        var local: String?
        if case .failure(let error) = result { local = "\(error)" }
        watchdog?.enter(what)
        // One scalar, no allocation (the step agreement runs every step): a failure outranks any vote.
        let largest = try allReduce(local == nil ? Int64(vote) : Int64.max, op: .max)
        if largest != Int64.max { return (try result.get(), Int32(largest)) }
        throw AgreedFailure(what: what, failures: try gatherMessages(local))
    }

    /// Every rank's message (nil: none), to every rank.
    private func gatherMessages(_ local: String?) throws -> [(rank: Int, message: String)] {
        let bytes = Array((local ?? "").utf8)
        watchdog?.enter("gathering the failures' messages")
        let flagsAndLengths = try allGather([local == nil ? -1 : Int64(bytes.count)])
        let width = Int(flagsAndLengths.max() ?? 0)
        let all = try allGather(bytes + [UInt8](repeating: 0, count: max(width, 0) - bytes.count))
        return flagsAndLengths.indices.compactMap { r in
            let length = Int(flagsAndLengths[r])
            guard length >= 0 else { return nil }
            return (r, String(decoding: all[(r * width)..<(r * width + length)], as: UTF8.self))
        }
    }
}
