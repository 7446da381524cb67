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
    struct Compute { var model: String; var batch: Int; var secondsPerImage: Double; var backwardShare: Double }

    static func run() throws {
        let args = CommandLine.arguments
        guard args.count >= 4 else { throw JobError(rank: 0, "usage: dcnet-bench scaling-report MEASUREMENTS OUTDIR") }
        let text = try String(contentsOfFile: args[2], encoding: .utf8)
        var compute: [Compute] = []
        var sweeps: [String: [(bytes: Double, fp32: Double, bf16: Double)]] = [:]
        var rateOrder: [String] = []
        var measured: [(rate: String, model: String, ips: Double)] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            let f = line.split(separator: " ").map(String.init)
            func bad() -> JobError { JobError(rank: 0, "\(args[2]):\(number + 1): cannot read '\(line)'") }
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
                sweeps[f[1], default: []].append((b, x, y))
            case "measured":
                guard f.count == 4, let v = Double(f[3]) else { throw bad() }
                measured.append((f[1], f[2], v))
            default:
                throw bad()
            }
        }
        var fits: [(rate: String, fp32: RingAllReduceModel, bf16: RingAllReduceModel)] = []
        for rate in rateOrder {
            let points = sweeps[rate]!
            guard let a = RingAllReduceModel.fitTwoRanks(points.map { ($0.bytes, $0.fp32) }),
                let b = RingAllReduceModel.fitTwoRanks(points.map { ($0.bytes / 2, $0.bf16) })
            else {
                throw JobError(rank: 0, "the \(rate) sweep cannot be fitted (too few or non-increasing points)")
            }
            fits.append((rate, a, b))
        }
        let models = ["cnn9", "resnet32"]
        // Building a network allocates its arena: count each model's parameters once.
        var parameterCounts: [String: Int] = [:]
        for name in Set(models + compute.map(\.model)) {
            let arch = Architecture(rawValue: name) ?? .cnn9
            parameterCounts[name] =
                ModelConfig(
                    architecture: arch,
                    convolution: .decoupled(DecoupledOperator(magnitude: .tanh, radius: .learnable(decay: 0.9)))
                )
                .makeNetwork(batch: 1).parameterCount
        }
        func parameters(_ name: String) -> Int { parameterCounts[name] ?? 0 }
        /// Seconds per image at a per-rank batch, interpolated in log(batch) between measured ones.
        func secondsPerImage(_ model: String, batch: Double) -> Double? {
            let points = compute.filter { $0.model == model }.sorted { $0.batch < $1.batch }
            guard let first = points.first, let last = points.last else { return nil }
            if batch <= Double(first.batch) { return first.secondsPerImage }
            if batch >= Double(last.batch) { return last.secondsPerImage }
            for (a, b) in zip(points, points.dropFirst()) where batch <= Double(b.batch) {
                let t = (log(batch) - log(Double(a.batch))) / (log(Double(b.batch)) - log(Double(a.batch)))
                return a.secondsPerImage + t * (b.secondsPerImage - a.secondsPerImage)
            }
            return last.secondsPerImage
        }
        // The overlap the trainer achieves, calibrated on the measured 2-host run whose all-reduce
        // is longest relative to compute (the slowest link): the all-reduce time the model gives
        // minus the exposed time measured (step − compute), over the compute. The backward share is
        // only an upper bound: the last bucket waits for the end of backward, and MPI progresses
        // between layers only.
        let backwardShare = compute.first(where: { $0.model == "cnn9" })?.backwardShare ?? 0.5
        var overlap = backwardShare
        var calibration = "the backward share of the step (no 2-host run was measured)"
        if let c64 = secondsPerImage("cnn9", batch: 64) {
            let compute64 = 64 * c64
            let candidates = measured.filter { $0.model == "cnn9" }.compactMap { m -> (String, Double, Double)? in
                guard let fit = fits.first(where: { $0.rate == m.rate }) else { return nil }
                return (m.rate, fit.fp32.time(ranks: 2, bytes: Double(parameters("cnn9")) * 4), 128 / m.ips - compute64)
            }
            if let slowest = candidates.max(by: { $0.1 < $1.1 }) {
                overlap = min(max((slowest.1 - max(slowest.2, 0)) / compute64, 0), backwardShare)
                calibration =
                    "calibrated on the 2-host \(slowest.0) run: all-reduce \(f(slowest.1 * 1e3, 1)) ms by the fit, "
                    + "\(f(max(slowest.2, 0) * 1e3, 1)) ms exposed as measured (step − one-rank compute of"
                    + " \(f(compute64 * 1e3, 1)) ms)"
            }
        }
        func stepModel(_ model: String, batch: Double, bf16: Bool) -> StepModel? {
            guard let t = secondsPerImage(model, batch: batch) else { return nil }
            return StepModel(
                secondsPerImage: t, gradientBytes: Double(parameters(model)) * (bf16 ? 2 : 4), overlap: overlap)
        }
        let nodes = (0...8).map { 1 << $0 }
        var md = """
            # Scaling model: dcnet-dist from 2 to 256 nodes

            Written by `scripts/bench scaling` (`dcnet-bench scaling-report`) from measurements on the
            simulated cluster of `scripts/cluster-sim` (network-namespace hosts on one machine, one core each,
            TCP over veth links, optionally shaped with `tc tbf`). The measured numbers are this machine's;
            the projection is a model with its assumptions stated below, not a measurement.

            ## Measurements

            Compute per image on one rank with one thread (TanhConv + cosine, learnable radius, BN + ReLU;
            forward + backward + update, from `dcnet-bench train-worker`):

            | model | parameters | per-rank batch | ms per image | backward share of the step |
            |---|---|---|---|---|

            """
        for c in compute {
            md +=
                "| \(c.model) | \(parameters(c.model)) | \(c.batch) | \(f(c.secondsPerImage * 1e3, 2)) |"
                + " \(f(c.backwardShare, 2)) |\n"
        }
        md +=
            "\nAll-reduce of one buffer between 2 hosts (median of the slowest rank; the bf16 column moves the same"
            + " number of gradients in half the bytes):\n\n"
        md +=
            "| gradient bytes (Float32) | " + rateOrder.map { "\($0) fp32 ms | \($0) bf16 ms" }.joined(separator: " | ")
            + " |\n"
        md += "|---|" + rateOrder.map { _ in "---|---|" }.joined() + "\n"
        let sizes = sweeps[rateOrder.first ?? ""]?.map(\.bytes) ?? []
        for s in sizes {
            md +=
                "| \(bytesText(s)) | "
                + rateOrder.map { r -> String in
                    let p = sweeps[r]!.first { $0.bytes == s }
                    return p.map { "\(f($0.fp32 * 1e3, 3)) | \(f($0.bf16 * 1e3, 3))" } ?? " | "
                }.joined(separator: " | ") + " |\n"
        }
        md += """

            ## The model

            - **All-reduce**: a ring, T(n, S) = 2(n−1)·α + 2(n−1)/n · S/β, with α (latency per ring step)
              and β (link bandwidth) fitted to the 2-host sweep of each link rate (least squares weighted
              by 1/T², so small and large messages both count). The ring is what large buckets approach in
              OpenMPI; it assumes every node has one link of bandwidth β to a non-blocking switch.
            - **Step**: compute C = b · t(b) (b images per rank, t measured per image; between measured
              batch sizes interpolated in log b), plus the part of the all-reduce the backward pass cannot
              hide: step = C + max(0, T − o·C). The trainer starts each gradient bucket's all-reduce as
              soon as backward has finished its layers, so o is at most the backward share of the step
              (\(f(backwardShare, 2)) for CNN-9); here o = \(f(overlap, 2)), \(calibration). ResNet-32 uses
              the same o.
            - **Efficiency** = throughput on n nodes / (n × one-node throughput). Weak scaling keeps 64
              images per rank (the global batch grows with n); strong scaling keeps the global batch at
              4096 (the per-rank batch shrinks to 16 at 256 nodes).
            - One rank per node with one core, as measured. A real node has many cores: compute per image
              drops by roughly the core count and the all-reduce is unchanged, so communication weighs more
              and the projected efficiencies are upper bounds for multi-core nodes at the same link rate.

            Fitted links:

            | link | α (µs) | β (Gbit/s) | bf16 α (µs) | bf16 β (Gbit/s, wire bytes) |
            |---|---|---|---|---|

            """
        for fit in fits {
            md +=
                "| \(fit.rate) | \(f(fit.fp32.alpha * 1e6, 1)) | \(f(fit.fp32.gigabitsPerSecond, 2)) |"
                + " \(f(fit.bf16.alpha * 1e6, 1)) | \(f(fit.bf16.gigabitsPerSecond, 2)) |\n"
        }
        if !measured.isEmpty {
            md +=
                "\nThe model against measured 2-host training (per-rank batch 64, Float32 gradients):\n\n| link | model"
                + " | measured img/s | model img/s |\n|---|---|---|---|\n"
            var gaps: [Double] = []
            for m in measured {
                if let fit = fits.first(where: { $0.rate == m.rate }),
                    let step = stepModel(m.model, batch: 64, bf16: false)
                {
                    let model = step.imagesPerSecond(ranks: 2, perRankBatch: 64, network: fit.fp32)
                    md += "| \(m.rate) | \(m.model) | \(f(m.ips, 1)) | \(f(model, 1)) |\n"
                    if abs(model - m.ips) > 1e-6 { gaps.append(model / m.ips - 1) }
                }
            }
            if let lo = gaps.min(), let hi = gaps.max() {
                md +=
                    "\nOn the links not used for the calibration the model is \(f(100 * lo, 0))–\(f(100 * hi, 0))%"
                    + " above the measurement: "
                    + "it leaves out rank imbalance and the per-step agreement (each step waits for the slowest rank,"
                    + " and the "
                    + "slowest of n ranks gets slower as n grows), so read the projections as upper bounds.\n"
            }
        }
        var lines: [String] = []
        var plots: [(String, SVGPlot)] = []
        for model in models where compute.contains(where: { $0.model == model }) {
            for (kind, batchFor) in [("weak", { (_: Int) in 64.0 }), ("strong", { (n: Int) in 4096.0 / Double(n) })] {
                md +=
                    "\n## Projection: \(model), \(kind) scaling"
                    + " (\(kind == "weak" ? "64 images per rank" : "global batch 4096"))\n\n"
                md +=
                    "Efficiency (and job images/s) per node count:\n\n| link | gradients | "
                    + nodes.map { "\($0)" }.joined(separator: " | ") + " |\n"
                md += "|---|---|" + nodes.map { _ in "---|" }.joined() + "\n"
                var series: [SVGPlot.Series] = []
                for fit in fits {
                    for bf16 in [false, true] {
                        var cells: [String] = [], points: [(Double, Double)] = []
                        for n in nodes {
                            let b = batchFor(n)
                            guard let step = stepModel(model, batch: b, bf16: bf16),
                                let one = stepModel(model, batch: kind == "weak" ? b : 4096, bf16: bf16)
                            else { continue }
                            let net = bf16 ? fit.bf16 : fit.fp32
                            let ips = step.imagesPerSecond(ranks: n, perRankBatch: b, network: net)
                            let single = one.imagesPerSecond(
                                ranks: 1, perRankBatch: kind == "weak" ? b : 4096, network: net)
                            let efficiency = ips / (Double(n) * single)
                            cells.append("\(f(efficiency, 2)) (\(f(ips, 0)))")
                            points.append((log2(Double(n)), efficiency))
                            if kind == "weak" && model == "cnn9" && n == 64 && !bf16 {
                                lines.append("projected-efficiency-64-nodes-cnn9-\(fit.rate): \(f(efficiency, 3))")
                            }
                        }
                        md += "| \(fit.rate) | \(bf16 ? "bf16" : "fp32") | " + cells.joined(separator: " | ") + " |\n"
                        series.append(.init(name: "\(fit.rate) \(bf16 ? "bf16" : "fp32")", xy: points))
                    }
                }
                var plot = SVGPlot(
                    title: "\(model), \(kind) scaling: projected parallel efficiency",
                    xLabel: "nodes (log2: 0 = 1 node, 8 = 256)", yLabel: "efficiency", series: series)
                plot.yInclude = [0, 1]
                plot.integerX = true
                plot.showMarkers = true
                let file = "scaling-\(model)-\(kind).svg"
                plots.append((file, plot))
                md += "\n![\(model) \(kind) scaling](\(file))\n"
            }
        }
        md += """

            ## Where the model stops holding

            - **Small per-rank batches.** Compute per image was measured at per-rank batches of
              \(Set(compute.map(\.batch)).sorted().map(String.init).joined(separator: " and ")); \
            below the smallest the model holds
              the smallest's cost per image, but GEMMs of a handful of images run far below peak, so strong
              scaling past ~16 images per rank is optimistic.
            - **Large global batches** change the optimisation, not only the speed: weak scaling to 256
              nodes means a global batch of 16,384, which needs `--lr-scaling` with a warm-up (and may
              still lose accuracy); the model says nothing about accuracy.
            - **The network.** A ring over a non-blocking switch; oversubscribed fabrics, stragglers (the
              slowest rank sets every step: see the straggler report in the progress lines) and OpenMPI
              choosing non-ring algorithms for mid-size buckets are not modelled. The links here are veth
              pairs on one machine, so the unshaped α and β are those of the kernel's loopback path, not of
              a real NIC.
            """
        let out = URL(fileURLWithPath: args[3])
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try AtomicFile.write(md, to: out.appendingPathComponent("scaling.md").path)
        for (file, plot) in plots { try plot.write(to: out.appendingPathComponent(file)) }
        print("wrote \(out.appendingPathComponent("scaling.md").path) and \(plots.count) plots")
        if let unshaped = fits.first(where: { $0.rate == "unshaped" }) {
            print("allreduce-bandwidth-gbit-unshaped: \(f(unshaped.fp32.gigabitsPerSecond, 2))")
        }
        for line in lines { print(line) }
    }

    static func f(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }
    static func bytesText(_ b: Double) -> String {
        b >= 1_048_576 ? "\(Int(b) >> 20) MB" : "\(Int(b) >> 10) KB"
    }
}
