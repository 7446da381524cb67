import DCNetLayers
import Foundation
import MPI

/// Statistics of synchronised BatchNorm and of the decoupled layers' mean patch norm, summed over ranks.
final class CommunicatorStatistics: StatisticsReducer {
    let communicator: Communicator
    init(_ c: Communicator) { communicator = c }
    var replicas: Int { communicator.size }
    func sum(_ values: UnsafeMutableBufferPointer<Float>) {
        communicator.watchdog?.enter("synchronised BatchNorm statistics")
        do { try communicator.allReduce(values, op: .sum) } catch { fatalCollective(error) }
    }
    func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        communicator.watchdog?.enter("synchronised BatchNorm statistics")
        do { try communicator.allReduce(values, op: .sum) } catch { fatalCollective(error) }
    }
    /// A failed collective inside forward/backward leaves the ranks out of step: abort the job.
    private func fatalCollective(_ error: Error) -> Never {
        let c = communicator
        FileHandle.standardError.write(
            "dcnet-dist: rank \(c.rank): statistics all-reduce failed: \(error)\n".data(using: .utf8)!)
        c.abort(code: 1)
    }
}

/// An error that ends the whole job; `rank` is where it happened.
public struct JobError: Error, CustomStringConvertible {
    public let rank: Int
    public let message: String
    public init(rank: Int, _ message: String) { self.rank = rank; self.message = message }
    public var description: String { "rank \(rank): \(message)" }
}

/// Rank 0 prints; everyone else stays quiet (one place for it, as in llm.c).
public struct Console {
    public let rank: Int
    public init(rank: Int) { self.rank = rank }
    public func print(_ line: String) {
        guard rank == 0 else { return }
        FileHandle.standardOutput.write((line + "\n").data(using: .utf8)!)
    }
    /// Errors are printed by the rank that has them.
    public func error(_ line: String) {
        FileHandle.standardError.write(("dcnet-dist: " + line + "\n").data(using: .utf8)!)
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

    /// The same for an outcome computed earlier.
    public func agree(_ local: Result<Void, Error>, console: Console, what: String) throws {
        try agree(console: console, what: what) {
            if case .failure(let error) = local { throw error }
        }
    }
}

/// SIGTERM / SIGUSR1 (batch-system preemption) set a flag that the trainer all-reduces at the next
/// step boundary, so every rank stops at the same step.
public enum PreemptionSignal {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    public static var received: Bool { flag != 0 }
    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in PreemptionSignal.flag = 1 }
        signal(SIGTERM, handler)
        signal(SIGUSR1, handler)
    }
}

/// OpenBLAS threads per rank: `requested`, or the node's cores divided by the ranks on the node.
func threadsPerRank(requested: Int?, communicator: Communicator) -> Int {
    if let requested { return requested }
    let cores = ProcessInfo.processInfo.activeProcessorCount
    return max(1, cores / max(communicator.localSize, 1))
}
