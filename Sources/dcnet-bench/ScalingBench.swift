// The measuring half of `scripts/bench scaling` (the script runs these under mpirun on the
// simulated cluster, then `dcnet-bench scaling-report` fits and projects):
//   dcnet-bench allreduce-sweep   all-reduce time against message size, Float32 and bfloat16
import Foundation
import MPI

enum ScalingBench {
    /// Under mpirun: for each gradient size 1 KB … 64 MB (as Float32 bytes), the median over
    /// samples of the slowest rank's time per in-place sum all-reduce, once with Float32 and once
    /// with the same number of gradients as bfloat16 (half the bytes on the wire). Rank 0 prints
    /// one `SWEEP bytes=B fp32=S bf16=S` line per size (seconds).
    static func sweep() throws {
        let comm = Communicator.world
        let sizes = (0..<9).map { 1024 << (2 * $0) }  // 1 KB, 4 KB, ..., 64 MB
        let samples = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 5
        if comm.isRoot {
            print(
                "all-reduce sweep on \(comm.size) ranks (\(comm.localSize) on rank 0's node); median of \(samples)"
                    + " samples"
            )
            print(
                AllReduceBench.pad("gradients", 11) + AllReduceBench.pad("fp32 ms", 11)
                    + AllReduceBench.pad("bf16 ms", 11)
                    + AllReduceBench.pad("fp32 Gbit/s", 13))
        }
        for bytes in sizes {
            let count = bytes / 4
            let floats = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            let halves = UnsafeMutableBufferPointer<BFloat16>.allocate(capacity: count)
            defer { floats.deallocate(); halves.deallocate() }
            floats.initialize(repeating: 0)
            halves.initialize(repeating: BFloat16(Float(0)))
            // Enough calls per sample that small messages are not timer noise (~8 MB moved).
            let calls = max(2, (8 << 20) / bytes)
            var fp32: [Double] = [], bf16: [Double] = []
            for sample in 0..<(samples + 1) {
                try comm.barrier()
                var t = [0.0, 0.0]
                for _ in 0..<calls {
                    t[0] += try AllReduceBench.timed { try comm.allReduce(floats, op: .sum) }
                    t[1] += try AllReduceBench.timed { try comm.allReduce(halves, op: .sum) }
                }
                try comm.allReduce(&t, op: .max)
                guard sample > 0 else { continue }  // the first sample warms up connections
                fp32.append(t[0] / Double(calls)); bf16.append(t[1] / Double(calls))
            }
            let a = AllReduceBench.median(fp32), b = AllReduceBench.median(bf16)
            if comm.isRoot {
                print(
                    AllReduceBench.pad(AllReduceBench.formatBytes(bytes), 11)
                        + AllReduceBench.pad(String(format: "%.3f", a * 1e3), 11)
                        + AllReduceBench.pad(String(format: "%.3f", b * 1e3), 11)
                        + AllReduceBench.pad(String(format: "%.3f", Double(bytes) * 8 / a / 1e9), 13))
                print("SWEEP bytes=\(bytes) fp32=\(a) bf16=\(b)")
            }
        }
    }
}
