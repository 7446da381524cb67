// `dcnet-bench scaling-report MEASUREMENTS OUTDIR`: fits the ring all-reduce model to the sweeps
// that `scripts/bench scaling` measured on the simulated cluster, projects training throughput
// to 256 nodes, and writes OUTDIR/scaling.md with SVG plots. Ends with the bench's name: value lines.
//
// MEASUREMENTS holds one measurement per line (written by scripts/bench-scaling):
//   compute MODEL PER_RANK_BATCH SECONDS_PER_IMAGE BACKWARD_SHARE
//   sweep RATE BYTES FP32_SECONDS BF16_SECONDS
//   measured RATE MODEL IMAGES_PER_S            (2 hosts × 1 rank, per-rank batch 64, Float32)
import DCNetFormats
import DCNetLayers
import DCNetMetrics
import DCNetModels
import DCNetReport
import DCNetTraining
import Foundation
import MPI

enum ScalingReport {
    /// The models projected, in the order of the report's sections.
    static let models = ["cnn9", "resnet32"]

    static func run() throws {
        let args = CommandLine.arguments
        guard args.count >= 4 else { throw JobError(rank: 0, "usage: dcnet-bench scaling-report MEASUREMENTS OUTDIR") }
        let input = try Measurements(path: args[2])
        let projection = try Projection(input, fits: fitLinks(input))
        let (markdown, plots, lines) = report(projection)
        let out = URL(fileURLWithPath: args[3])
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try AtomicFile.write(markdown, to: out.appendingPathComponent("scaling.md").path)
        for (file, plot) in plots { try plot.write(to: out.appendingPathComponent(file)) }
        print("wrote \(out.appendingPathComponent("scaling.md").path) and \(plots.count) plots")
        if let unshaped = projection.fits.first(where: { $0.rate == "unshaped" }) {
            print("allreduce-bandwidth-gbit-unshaped: \(f(unshaped.fp32.gigabitsPerSecond, 2))")
        }
        for line in lines { print(line) }
    }

    // MARK: - Measurements

    struct Compute { var model: String; var batch: Int; var secondsPerImage: Double; var backwardShare: Double }
    /// One message size of a link rate's all-reduce sweep: seconds for Float32 and for bfloat16 gradients.
    struct SweepPoint { var bytes: Double; var fp32: Double; var bf16: Double }
    /// A 2-host training run: images per second over one link rate.
    struct Measured { var rate: String; var model: String; var ips: Double }

    /// The lines of a MEASUREMENTS file, by kind, in file order.
    struct Measurements {
        var compute: [Compute] = []
        var sweeps: [String: [SweepPoint]] = [:]
        /// The link rates in the order of their first sweep line.
        var rateOrder: [String] = []
        var measured: [Measured] = []

        init(path: String) throws {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            for (number, line) in text.split(separator: "\n").enumerated() {
                let f = line.split(separator: " ").map(String.init)
                func bad() -> JobError { JobError(rank: 0, "\(path):\(number + 1): cannot read '\(line)'") }
                switch f.first {
                case "compute":
                    guard f.count == 5, let b = Int(f[2]), let s = Double(f[3]), let share = Double(f[4]) else {
                        throw bad()
                    }
                    compute.append(Compute(model: f[1], batch: b, secondsPerImage: s, backwardShare: share))
                case "sweep":
                    guard f.count == 5, let b = Double(f[2]), let x = Double(f[3]), let y = Double(f[4]) else {
                        throw bad()
                    }
                    if sweeps[f[1]] == nil { rateOrder.append(f[1]) }
                    sweeps[f[1], default: []].append(SweepPoint(bytes: b, fp32: x, bf16: y))
                case "measured":
                    guard f.count == 4, let v = Double(f[3]) else { throw bad() }
                    measured.append(Measured(rate: f[1], model: f[2], ips: v))
                default:
                    throw bad()
                }
            }
        }
    }

    // MARK: - The model

    /// The ring model fitted to one link rate's sweep, for Float32 and for bfloat16 gradients.
    struct LinkFit { var rate: String; var fp32: RingAllReduceModel; var bf16: RingAllReduceModel }

    /// Per link rate, in sweep order; bfloat16 against its wire bytes (half the Float32 ones).
    static func fitLinks(_ input: Measurements) throws -> [LinkFit] {
        try input.rateOrder.map { rate in
            let points = input.sweeps[rate]!
            guard let a = RingAllReduceModel.fitTwoRanks(points.map { ($0.bytes, $0.fp32) }),
                let b = RingAllReduceModel.fitTwoRanks(points.map { ($0.bytes / 2, $0.bf16) })
            else {
                throw JobError(rank: 0, "the \(rate) sweep cannot be fitted (too few or non-increasing points)")
            }
            return LinkFit(rate: rate, fp32: a, bf16: b)
        }
    }

    /// The step model of every projected configuration: measured compute, fitted links, the models'
    /// parameter counts and the share of the all-reduce that backward hides.
    struct Projection {
        let input: Measurements
        let fits: [LinkFit]
        let parameterCounts: [String: Int]
        /// CNN-9's backward share of the step: the most the overlap can hide.
        let backwardShare: Double
        /// The overlap o of the step model, and where its value comes from.
        private(set) var overlap: Double
        private(set) var calibration = "the backward share of the step (no 2-host run was measured)"

        init(_ input: Measurements, fits: [LinkFit]) {
            self.input = input
            self.fits = fits
            parameterCounts = Projection.countParameters(Set(ScalingReport.models + input.compute.map(\.model)))
            backwardShare = input.compute.first(where: { $0.model == "cnn9" })?.backwardShare ?? 0.5
            overlap = backwardShare
            if let calibrated = calibratedOverlap() { (overlap, calibration) = calibrated }
        }

        /// Building a network allocates its arena: each model's parameters are counted once.
        static func countParameters(_ names: Set<String>) -> [String: Int] {
            var counts: [String: Int] = [:]
            for name in names {
                let arch = Architecture(rawValue: name) ?? .cnn9
                counts[name] =
                    ModelConfig(
                        architecture: arch,
                        convolution: .decoupled(DecoupledOperator(magnitude: .tanh, radius: .learnable(decay: 0.9)))
                    )
                    .makeNetwork(batch: 1).parameterCount
            }
            return counts
        }

        func parameters(_ name: String) -> Int { parameterCounts[name] ?? 0 }

        /// Seconds per image at a per-rank batch, interpolated in log(batch) between measured ones.
        func secondsPerImage(_ model: String, batch: Double) -> Double? {
            let points = input.compute.filter { $0.model == model }.sorted { $0.batch < $1.batch }
            guard let first = points.first, let last = points.last else { return nil }
            if batch <= Double(first.batch) { return first.secondsPerImage }
            if batch >= Double(last.batch) { return last.secondsPerImage }
            for (a, b) in zip(points, points.dropFirst()) where batch <= Double(b.batch) {
                let t = (log(batch) - log(Double(a.batch))) / (log(Double(b.batch)) - log(Double(a.batch)))
                return a.secondsPerImage + t * (b.secondsPerImage - a.secondsPerImage)
            }
            return last.secondsPerImage
        }

        /// The overlap the trainer achieves, calibrated on the measured 2-host run whose all-reduce
        /// is longest relative to compute (the slowest link): the all-reduce time the model gives
        /// minus the exposed time measured (step − compute), over the compute. The backward share is
        /// only an upper bound: the last bucket waits for the end of backward, and MPI progresses
        /// between layers only. Nil without a CNN-9 compute measurement or 2-host run.
        func calibratedOverlap() -> (overlap: Double, calibration: String)? {
            guard let c64 = secondsPerImage("cnn9", batch: 64) else { return nil }
            let compute64 = 64 * c64
            let candidates = input.measured.filter { $0.model == "cnn9" }.compactMap {
                m -> (rate: String, allReduce: Double, exposed: Double)? in
                guard let fit = fits.first(where: { $0.rate == m.rate }) else { return nil }
                return (m.rate, fit.fp32.time(ranks: 2, bytes: Double(parameters("cnn9")) * 4), 128 / m.ips - compute64)
            }
            guard let slowest = candidates.max(by: { $0.allReduce < $1.allReduce }) else { return nil }
            let exposed = max(slowest.exposed, 0)
            return (
                min(max((slowest.allReduce - exposed) / compute64, 0), backwardShare),
                "calibrated on the 2-host \(slowest.rate) run: all-reduce \(f(slowest.allReduce * 1e3, 1)) ms by the "
                    + "fit, \(f(exposed * 1e3, 1)) ms exposed as measured (step − one-rank compute of"
                    + " \(f(compute64 * 1e3, 1)) ms)"
            )
        }

        func stepModel(_ model: String, batch: Double, bf16: Bool) -> StepModel? {
            guard let t = secondsPerImage(model, batch: batch) else { return nil }
            return StepModel(
                secondsPerImage: t, gradientBytes: Double(parameters(model)) * (bf16 ? 2 : 4), overlap: overlap)
        }
    }

    /// Weak scaling keeps 64 images per rank; strong scaling keeps the global batch at 4096.
    enum Scaling: String, CaseIterable {
        case weak, strong

        func perRankBatch(nodes: Int) -> Double { self == .weak ? 64.0 : 4096.0 / Double(nodes) }
        /// The per-rank batch of the one-node run an efficiency is relative to.
        func oneNodeBatch(perRankBatch: Double) -> Double { self == .weak ? perRankBatch : 4096 }
        var batchText: String { self == .weak ? "64 images per rank" : "global batch 4096" }
    }

    /// Parallel efficiency and job images per second of `model` on `nodes` nodes over `fit`, or nil
    /// where a compute measurement is missing.
    static func projected(
        _ projection: Projection, _ model: String, _ kind: Scaling, _ fit: LinkFit, bf16: Bool, nodes n: Int
    ) -> (efficiency: Double, ips: Double)? {
        let b = kind.perRankBatch(nodes: n)
        let single = kind.oneNodeBatch(perRankBatch: b)
        guard let step = projection.stepModel(model, batch: b, bf16: bf16),
            let one = projection.stepModel(model, batch: single, bf16: bf16)
        else { return nil }
        let net = bf16 ? fit.bf16 : fit.fp32
        let ips = step.imagesPerSecond(ranks: n, perRankBatch: b, network: net)
        let oneNode = one.imagesPerSecond(ranks: 1, perRankBatch: single, network: net)
        return (ips / (Double(n) * oneNode), ips)
    }

    static func f(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }
    static func bytesText(_ b: Double) -> String {
        b >= 1_048_576 ? "\(Int(b) >> 20) MB" : "\(Int(b) >> 10) KB"
    }
}
