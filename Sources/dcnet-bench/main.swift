// `dcnet-bench NAME`: the benchmarks behind `scripts/bench NAME`.
// Each prints a readable table and ends with `name: value` lines.
import DCNetFormats
import DCNetLayers
import Foundation

let benches: [String: () throws -> Void] = [
    "allreduce": AllReduceBench.run,
    "conv": ConvBench.run,
    "gemm": GEMMChunkBench.run,
    "train": TrainBench.run,
    "train-worker": TrainBench.worker,
    "train-precision": PrecisionBench.run,
    "write-data": TrainBench.writeData,
    "allreduce-sweep": ScalingBench.sweep,
    "scaling-report": ScalingReport.run,
    "operator": OperatorBench.run,
    "attack": AttackBench.run,
]
let args = CommandLine.arguments
guard args.count >= 2, let bench = benches[args[1]] else {
    FileSink.standardError.writeIgnoringErrors(
        "usage: dcnet-bench \(benches.keys.sorted().joined(separator: "|")) [options]\n")
    exit(2)
}
if let problem = BenchConvolution.problem {
    FileSink.standardError.writeIgnoringErrors("dcnet-bench: \(problem)\n")
    exit(2)
}
do { try bench() } catch {
    FileSink.standardError.writeIgnoringErrors("dcnet-bench \(args[1]): \(error)\n")
    exit(1)
}
