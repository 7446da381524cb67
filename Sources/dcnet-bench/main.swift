// `dcnet-bench NAME`: the benchmarks behind `scripts/bench NAME`.
// Each prints a readable table and ends with `name: value` lines.
import DCNetLayers
import Foundation

let benches: [String: () throws -> Void] = [
    "allreduce": AllReduceBench.run,
    "conv": ConvBench.run,
    "gemm": GEMMChunkBench.run,
    "train": TrainBench.run,
    "train-worker": TrainBench.worker,
    "write-data": TrainBench.writeData,
    "allreduce-sweep": ScalingBench.sweep,
    "scaling-report": ScalingReport.run,
    "operator": OperatorBench.run,
]
let args = CommandLine.arguments
guard args.count >= 2, let bench = benches[args[1]] else {
    FileHandle.standardError.write(
        "usage: dcnet-bench \(benches.keys.sorted().joined(separator: "|")) [options]\n".data(using: .utf8)!)
    exit(2)
}
// BENCH_CONV_ALGORITHM=gemm measures im2col + GEMM instead of Winograd (inherited by train's workers).
if let name = ProcessInfo.processInfo.environment["BENCH_CONV_ALGORITHM"], !name.isEmpty {
    guard let algorithm = ConvolutionAlgorithm(rawValue: name) else {
        FileHandle.standardError.write(
            ("dcnet-bench: BENCH_CONV_ALGORITHM=\(name) is not one of"
                + " \(ConvolutionAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))\n")
                .data(using: .utf8)!)
        exit(2)
    }
    ConvolutionAlgorithm.default = algorithm
}
do { try bench() } catch {
    FileHandle.standardError.write("dcnet-bench \(args[1]): \(error)\n".data(using: .utf8)!)
    exit(1)
}
