import DCNetData
import DCNetLayers
import DCNetModels
import DCNetTraining
import Foundation
import MPI

/// `dcnet-bench train-precision`: fp32 against bf16 GEMMs with the two precisions interleaved step by
/// step in one process (one rank, one thread, per-rank batch 64 as in the 2 × 1 run of `train`), for
/// TanhConv + cosine and the baseline CNN-9 at full width. On a shared machine, alternating whole
/// runs leaves seconds between the samples compared; alternating single steps puts them
/// milliseconds apart, and the thread CPU time per step leaves out the time the rank waited for a
/// core. Prints the median wall and CPU time per step and their ratios.
enum PrecisionBench {
    static let steps = Int(ProcessInfo.processInfo.environment["BENCH_STEPS"] ?? "") ?? 12

    static func threadSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }

    static func run() throws {
        MPIRuntime.initialize()
        let (bf16, detail) = PrecisionRequest.localBF16Support()
        guard bf16 else {
            print("bf16-vs-fp32-step: skipped: \(detail)")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dcnet-bench-p\(getpid())").path
        try TrainBench.writeRandomCIFAR(directory: dir, images: 640)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        print(
            "train-precision: CNN-9 64/128/256, batch 64, 1 rank × 1 thread, \(BenchConvolution.algorithm) convolutions,"
                + " fp32 and bf16 steps interleaved; 2 warm-up + \(steps) timed steps each; \(detail)")
        for model in ["tanh", "baseline"] {
            var trainers: [Trainer] = []
            for precision in [PrecisionRequest.fp32, .bf16] {
                var config = TrainingConfig(
                    model: ModelConfig(
                        architecture: .cnn9,
                        convolution: model == "baseline"
                            ? .baseline
                            : .decoupled(DecoupledOperator(magnitude: .tanh, radius: .learnable(decay: 0.9)))))
                config.globalBatch = 64
                config.epochs = 100
                var options = RunOptions(dataDirectory: dir)
                options.threads = 1
                options.evalEvery = 0
                options.convolutionAlgorithm = BenchConvolution.algorithm
                options.precision = precision
                trainers.append(try Trainer(config: config, options: options))
            }
            for t in trainers { _ = try t.runSteps(2) }
            var wall: [[Double]] = [[], []], cpu: [[Double]] = [[], []]
            for step in 0..<steps {
                // ABBA within each pair of steps.
                for i in step % 2 == 0 ? [0, 1] : [1, 0] {
                    let w0 = MPIRuntime.wallTime(), c0 = threadSeconds()
                    _ = try trainers[i].runSteps(1)
                    cpu[i].append(threadSeconds() - c0)
                    wall[i].append(MPIRuntime.wallTime() - w0)
                }
            }
            let (w32, w16) = (median(wall[0]), median(wall[1])), (c32, c16) = (median(cpu[0]), median(cpu[1]))
            print(
                String(
                    format: "  %@: fp32 %.0f ms/step (CPU %.0f ms), bf16 %.0f ms/step (CPU %.0f ms)", model,
                    1000 * w32, 1000 * c32, 1000 * w16, 1000 * c16))
            print(String(format: "bf16-vs-fp32-step-%@: %.3f", model, w32 / w16))
            print(String(format: "bf16-vs-fp32-step-cpu-%@: %.3f", model, c32 / c16))
        }
    }
}
