import DCNetData
import DCNetFormats
import DCNetLayers
import DCNetModels
import DCNetTraining
import Foundation
import MPI

/// `scripts/bench train`: end-to-end training throughput of full-width CNN-9 with TanhConv + cosine
/// (learnable radius, BatchNorm + ReLU) at global batch 128 with 2 ranks × 1 thread, against
/// 1 rank × 1 thread at the same per-rank batch (64), with the step breakdown and peak memory; then,
/// where this host can compute in bf16, fp32 against bf16 GEMMs (2 ranks × 1 thread) for TanhConv +
/// cosine and the baseline CNN, the two precisions alternated in each repetition (ABBA), medians.
/// The parent process launches the MPI jobs (`dcnet-bench train-worker`) and takes medians.
enum TrainBench {
    static let steps = Int(ProcessInfo.processInfo.environment["BENCH_STEPS"] ?? "") ?? 8
    static let warmup = 2
    static let repeats = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 3

    struct Result {
        var imagesPerSecond = 0.0, forward = 0.0, backward = 0.0, exposed = 0.0, update = 0.0, data = 0.0
        /// Extra wait of the rank that finished backward first (not part of the step breakdown).
        var imbalance = 0.0
        var peakRSSMegabytes = 0.0
        var imbalanceFraction: Double { imbalance / (forward + backward + exposed + update + data) }
        var exposedFraction: Double { exposed / (forward + backward + exposed + update + data) }
    }

    static func run() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dcnet-bench-\(getpid())").path
        try writeRandomCIFAR(directory: dir, images: 1280)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileSink.standardOutput.writeIgnoringErrors(
            ("train benchmark: CNN-9 64/128/256, TanhConv + cos, learnable radius, BN + ReLU,"
                + " \(BenchConvolution.algorithm) convolutions; \(warmup) warm-up + \(steps) timed steps; median"
                + " of \(repeats) runs\n"))
        var two: [Result] = [], one: [Result] = []
        let (bf16, bf16Detail) = PrecisionRequest.localBF16Support()
        var bf16Runs: [String: [Result]] = [:], fp32Runs: [String: [Result]] = [:]
        for rep in 0..<repeats {
            two.append(try launch(ranks: 2, globalBatch: 128, data: dir))
            one.append(try launch(ranks: 1, globalBatch: 64, data: dir))
            guard bf16 else { continue }
            for model in ["tanh", "baseline"] {
                // ABBA: fp32 first in even repetitions, bf16 first in odd ones.
                for precision in rep % 2 == 0 ? ["fp32", "bf16"] : ["bf16", "fp32"] {
                    let r = try launch(ranks: 2, globalBatch: 128, data: dir, precision: precision, model: model)
                    if precision == "bf16" {
                        bf16Runs[model, default: []].append(r)
                    } else {
                        fp32Runs[model, default: []].append(r)
                    }
                }
            }
        }
        let m2 = medianResult(two), m1 = medianResult(one)
        print("")
        print("configuration              img/s   forward  backward  exposed-comm  update   data    peak RSS/rank")
        for (name, r) in [("2 ranks × 1 thread (128)", m2), ("1 rank × 1 thread (64)", m1)] {
            let total = r.forward + r.backward + r.exposed + r.update + r.data
            func pct(_ v: Double) -> String { String(format: "%5.1f%%", 100 * v / total) }
            print(
                name.padding(toLength: 25, withPad: " ", startingAt: 0)
                    + String(format: "%7.1f", r.imagesPerSecond) + "   " + pct(r.forward) + "   " + pct(r.backward)
                    + "      " + pct(r.exposed) + "      " + pct(r.update) + "  " + pct(r.data)
                    + String(format: "   %7.0f MB", r.peakRSSMegabytes))
        }
        print("(percentages are shares of the step time; exposed-comm is the wait for all-reduce after the last rank's")
        print(
            " backward ends; the first rank to finish also waited"
                + " \(String(format: "%.1f%%", 100 * m2.imbalanceFraction)) of the step for the other: imbalance)"
        )
        print("")
        print(String(format: "train-images-per-s-2x1: %.1f", m2.imagesPerSecond))
        print(String(format: "scaling-2x1-vs-1x1: %.3f", m2.imagesPerSecond / m1.imagesPerSecond))
        print(String(format: "exposed-allreduce-fraction: %.4f", m2.exposedFraction))
        print(String(format: "peak-rss-mb-per-rank: %.0f", m2.peakRSSMegabytes))
        guard bf16 else {
            print("bf16-vs-fp32: skipped: \(bf16Detail)")
            return
        }
        print("")
        print("bf16 GEMMs (\(bf16Detail)), 2 ranks × 1 thread, global batch 128, alternated with fp32:")
        for model in ["tanh", "baseline"] {
            let f = medianResult(fp32Runs[model]!), b = medianResult(bf16Runs[model]!)
            func phases(_ r: Result) -> String {
                String(format: "forward %.1f ms, backward %.1f ms", 1000 * r.forward, 1000 * r.backward)
            }
            print(
                String(format: "  %-8@ fp32 %6.1f img/s (", model as NSString, f.imagesPerSecond) + phases(f)
                    + String(format: ")   bf16 %6.1f img/s (", b.imagesPerSecond) + phases(b) + ")")
        }
        for model in ["tanh", "baseline"] {
            let ratios = zip(bf16Runs[model]!, fp32Runs[model]!).map { $0.imagesPerSecond / $1.imagesPerSecond }
            print(
                String(
                    format: "bf16-vs-fp32-train-%@: %.3f", model,
                    medianResult(bf16Runs[model]!).imagesPerSecond / medianResult(fp32Runs[model]!).imagesPerSecond)
                    + "   (per repetition: "
                    + ratios.map { String(format: "%.3f", $0) }.joined(separator: ", ") + ")")
        }
    }

    static func medianResult(_ rs: [Result]) -> Result {
        let sorted = rs.sorted { $0.imagesPerSecond < $1.imagesPerSecond }
        var r = sorted[sorted.count / 2]
        let fractions = rs.map(\.exposedFraction).sorted()
        let f = fractions[fractions.count / 2]
        // Report the median exposed fraction with the median run's other shares.
        let others = r.forward + r.backward + r.update + r.data
        r.exposed = f * others / (1 - f)
        r.peakRSSMegabytes = rs.map(\.peakRSSMegabytes).max() ?? 0
        return r
    }

    static func launch(
        ranks: Int, globalBatch: Int, data: String, precision: String = "fp32", model: String = "tanh"
    ) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var args = ["mpirun", "-np", "\(ranks)", "--oversubscribe", "--bind-to", "core"]
        if getuid() == 0 { args.append("--allow-run-as-root") }
        args += [CommandLine.arguments[0], "train-worker", data, "\(globalBatch)", precision, model]
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0,
            let line = output.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") })
        else {
            throw JobError(
                rank: 0, "train-worker with \(ranks) rank(s) failed (exit \(p.terminationStatus)):\n\(output)")
        }
        var fields: [String: Double] = [:]
        for kv in line.dropFirst(7).split(separator: " ") {
            let parts = kv.split(separator: "=")
            if parts.count == 2 { fields[String(parts[0])] = Double(parts[1]) }
        }
        let r = Result(
            imagesPerSecond: fields["ips"] ?? 0, forward: fields["forward"] ?? 0, backward: fields["backward"] ?? 0,
            exposed: fields["exposed"] ?? 0, update: fields["update"] ?? 0, data: fields["data"] ?? 0,
            imbalance: fields["imbalance"] ?? 0, peakRSSMegabytes: fields["rss"] ?? 0)
        // Unbuffered, so progress shows while the next run starts, also through a pipe.
        FileSink.standardOutput.writeIgnoringErrors(
            String(
                format:
                    "  %d rank(s), global batch %d, %@ %@: %.1f img/s, exposed communication %.2f%% of the step"
                    + " (+ %.2f%% rank imbalance)\n",
                ranks, globalBatch, model, precision, r.imagesPerSecond, 100 * r.exposedFraction,
                100 * r.imbalanceFraction))
        return r
    }

    /// Worker side, under mpirun: `dcnet-bench train-worker DATA GLOBAL_BATCH [fp32|bf16] [tanh|baseline]`.
    static func worker() throws {
        MPIRuntime.initialize()
        let world = Communicator.world
        let args = CommandLine.arguments
        // BENCH_MODEL=resnet32 measures ResNet-32 instead (scripts/bench scaling).
        let architecture = Architecture(rawValue: ProcessInfo.processInfo.environment["BENCH_MODEL"] ?? "cnn9") ?? .cnn9
        let baseline = args.count > 5 && args[5] == "baseline"
        var config = TrainingConfig(
            model: ModelConfig(
                architecture: architecture,
                convolution: baseline
                    ? .baseline : .decoupled(DecoupledOperator(magnitude: .tanh, radius: .learnable(decay: 0.9)))))
        config.globalBatch = Int(args[3]) ?? 128
        config.epochs = 100
        var options = RunOptions(dataDirectory: args[2])
        options.threads = 1
        options.evalEvery = 0
        options.convolutionAlgorithm = BenchConvolution.algorithm
        options.precision = args.count > 4 ? PrecisionRequest(rawValue: args[4]) ?? .fp32 : .fp32
        if let mb = ProcessInfo.processInfo.environment["BENCH_BUCKET_MB"].flatMap(Double.init) {
            options.bucketMegabytes = mb
        }
        // scripts/bench multihost measures bfloat16 gradients on a slow link.
        if let name = ProcessInfo.processInfo.environment["BENCH_COMPRESSION"], !name.isEmpty {
            guard let compression = GradientCompression(rawValue: name) else {
                throw JobError(
                    rank: world.rank,
                    "BENCH_COMPRESSION=\(name) is not one of"
                        + " \(GradientCompression.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            options.gradientCompression = compression
        }
        let trainer = try Trainer(config: config, options: options)
        _ = try trainer.runSteps(warmup)
        try world.barrier()
        let start = MPIRuntime.wallTime()
        let t = try trainer.runSteps(steps)
        let elapsed = MPIRuntime.wallTime() - start
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let rss = try world.allReduce(Double(usage.ru_maxrss) / 1024, op: .max)
        let slowest = try world.allReduce(elapsed, op: .max)
        // A rank that ends backward first also waits for the slower rank to arrive: that is load
        // imbalance (here mostly a noisy, shared machine), not communication. In each step the rank
        // that waits least, the one that arrived last, waits only for the reduction itself.
        var least = t.exposedPerStep, most = t.exposedPerStep
        try world.allReduce(&least, op: .min)
        try world.allReduce(&most, op: .max)
        let exposed = least.reduce(0, +)
        let imbalance = most.reduce(0, +) - exposed
        if world.rank == 0 {
            let n = Double(steps)
            print(
                String(
                    format:
                        "RESULT ips=%.3f forward=%.5f backward=%.5f exposed=%.5f imbalance=%.5f update=%.5f data=%.5f"
                        + " rss=%.1f",
                    Double(steps * config.globalBatch) / slowest, t.forward / n, t.backward / n,
                    exposed / n, imbalance / n, t.update / n, t.data / n, rss))
        }
    }

    /// `dcnet-bench write-data DIR [IMAGES]`: the benchmark's random CIFAR-10 files, for
    /// launchers other than this process (scripts/bench multihost).
    static func writeData() throws {
        let args = CommandLine.arguments
        guard args.count >= 3 else { throw JobError(rank: 0, "usage: dcnet-bench write-data DIR [IMAGES]") }
        try writeRandomCIFAR(directory: args[2], images: args.count > 3 ? Int(args[3]) ?? 1280 : 1280)
    }

    static func writeRandomCIFAR(directory: String, images: Int) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var rng = Xoshiro256StarStar(seed: 1)
        let perFile = images / 5
        for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"] {
            var bytes = [UInt8](repeating: 0, count: perFile * 3073)
            for r in 0..<perFile {
                bytes[r * 3073] = UInt8(r % 10)
                for i in 1..<3073 { bytes[r * 3073 + i] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name + ".bin"))
        }
    }
}
