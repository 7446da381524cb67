import DCNetFormats
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
        FileSink.standardError.writeIgnoringErrors(
            "dcnet-dist: rank \(c.rank): statistics all-reduce failed: \(error)\n")
        c.abort(code: 1)
    }
}

/// OpenBLAS threads per rank: `requested`, or the node's cores divided by the ranks on the node.
public func threadsPerRank(requested: Int?, communicator: Communicator) -> Int {
    if let requested { return requested }
    let cores = ProcessInfo.processInfo.activeProcessorCount
    return max(1, cores / max(communicator.localSize, 1))
}
