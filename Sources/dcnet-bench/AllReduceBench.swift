// `dcnet-bench allreduce`: cost of the Swift MPI wrapper over a raw MPI_Allreduce.
//
// Both variants reduce the same Float buffer in place, in the same process, interleaved
// call by call (A B A B ..., the order flipping every pair) so that load from other
// processes on a shared machine hits both alike. Each sample (several calls of each) is
// preceded by a barrier so the ranks enter together; a sample's time per variant is the
// slowest rank's (a collective is only as fast as its last participant). Bandwidth is
// buffer bytes / median time per call; the ratio is the median over samples of
// direct time / wrapper time, so 1.000 means no measurable wrapper cost.
import CMPI
import Foundation
import MPI

enum AllReduceBench {
    static func run() throws {
        let comm = Communicator.world
        let sizes = (0..<8).map { 4096 << (2 * $0) }  // 4 KB, 16 KB, ..., 64 MB
        let samples = 16, warmups = 2  // even: half the samples start with each variant

        if comm.isRoot {
            print(
                "allreduce (in-place sum, Float) on \(comm.size) ranks, \(comm.localSize) on this node; "
                    + "median of \(samples) samples of interleaved calls, after \(warmups) warm-ups")
            print(
                pad("size", 10) + pad("calls", 7) + pad("wrapper GB/s", 14) + pad("direct GB/s", 13) + pad("ratio", 8))
        }

        var minRatioFrom1MB = Double.infinity
        for bytes in sizes {
            let count = bytes / MemoryLayout<Float>.stride
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            defer { buffer.deallocate() }
            // Zeros stay zeros under repeated summation: no overflow, no denormals.
            buffer.initialize(repeating: 0)
            // Enough calls per sample that small sizes are not timer noise (~16 MB moved),
            // and at least 4 A/B pairs so one descheduled call cannot decide a sample.
            let calls = max(4, (16 << 20) / bytes)

            let wrapper = {
                try comm.allReduce(buffer, op: .sum)
            }
            let direct = {
                let rc = MPI_Allreduce(
                    dcnet_mpi_in_place(), buffer.baseAddress, Int32(count),
                    dcnet_mpi_float(), dcnet_mpi_sum(), dcnet_mpi_comm_world())
                if rc != MPI_SUCCESS { throw BenchError.mpi(rc) }
            }

            var wrapperTimes: [Double] = [], directTimes: [Double] = [], pairRatios: [Double] = []
            for sample in 0..<(warmups + samples) {
                try comm.barrier()
                var tw = 0.0, td = 0.0
                for call in 0..<calls {
                    if (call + sample) % 2 == 0 {
                        tw += try timed(wrapper); td += try timed(direct)
                    } else {
                        td += try timed(direct); tw += try timed(wrapper)
                    }
                }
                var slowest = [tw, td]
                try comm.allReduce(&slowest, op: .max)
                guard sample >= warmups else { continue }
                wrapperTimes.append(slowest[0] / Double(calls))
                directTimes.append(slowest[1] / Double(calls))
                pairRatios.append(slowest[1] / slowest[0])
            }
            let wrapperGBs = Double(bytes) / median(wrapperTimes) / 1e9
            let directGBs = Double(bytes) / median(directTimes) / 1e9
            let ratio = median(pairRatios)
            if bytes >= 1 << 20 { minRatioFrom1MB = min(minRatioFrom1MB, ratio) }
            if comm.isRoot {
                print(
                    pad(formatBytes(bytes), 10) + pad("\(calls)", 7)
                        + pad(String(format: "%.3f", wrapperGBs), 14)
                        + pad(String(format: "%.3f", directGBs), 13)
                        + pad(String(format: "%.3f", ratio), 8))
            }
        }

        // Sanity: the benchmarked call really reduces.
        var ones = [Float](repeating: 1, count: 1000)
        try comm.allReduce(&ones, op: .sum)
        guard ones.allSatisfy({ $0 == Float(comm.size) }) else { throw BenchError.wrongResult }

        if comm.isRoot {
            print(String(format: "allreduce-wrapper-vs-direct-min-1MB: %.3f", minRatioFrom1MB))
        }
    }

    enum BenchError: Error { case mpi(Int32), wrongResult }

    /// Seconds for one call of `body` on this rank.
    @inline(__always)
    static func timed(_ body: () throws -> Void) throws -> Double {
        let start = MPI_Wtime()
        try body()
        return MPI_Wtime() - start
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    static func formatBytes(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? "\(bytes >> 20) MB" : "\(bytes >> 10) KB"
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
    }
}
