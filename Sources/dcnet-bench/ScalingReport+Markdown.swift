import DCNetReport
import Foundation

// The text of scaling.md, section by section: what was measured, the model and its check against
// the measured runs, one projection per model and kind of scaling, and the model's limits.

extension ScalingReport {
    /// scaling.md, its plots (file name and plot) and the bench's name: value lines.
    static func report(_ p: Projection) -> (markdown: String, plots: [(String, SVGPlot)], lines: [String]) {
        var md = measurementsSection(p) + modelSection(p) + modelCheckSection(p)
        var lines: [String] = []
        var plots: [(String, SVGPlot)] = []
        for model in models where p.input.compute.contains(where: { $0.model == model }) {
            for kind in Scaling.allCases {
                let section = projectionSection(p, model: model, kind: kind)
                md += section.markdown
                plots.append((section.file, section.plot))
                lines += section.lines
            }
        }
        md += limitsSection(p)
        return (md, plots, lines)
    }

    static func measurementsSection(_ p: Projection) -> String {
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
        for c in p.input.compute {
            md +=
                "| \(c.model) | \(p.parameters(c.model)) | \(c.batch) | \(f(c.secondsPerImage * 1e3, 2)) |"
                + " \(f(c.backwardShare, 2)) |\n"
        }
        let rateOrder = p.input.rateOrder, sweeps = p.input.sweeps
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
                    let point = sweeps[r]!.first { $0.bytes == s }
                    return point.map { "\(f($0.fp32 * 1e3, 3)) | \(f($0.bf16 * 1e3, 3))" } ?? " | "
                }.joined(separator: " | ") + " |\n"
        }
        return md
    }

    static func modelSection(_ p: Projection) -> String {
        var md = """

            ## The model

            - **All-reduce**: a ring, T(n, S) = 2(n−1)·α + 2(n−1)/n · S/β, with α (latency per ring step)
              and β (link bandwidth) fitted to the 2-host sweep of each link rate (least squares weighted
              by 1/T², so small and large messages both count). The ring is what large buckets approach in
              OpenMPI; it assumes every node has one link of bandwidth β to a non-blocking switch.
            - **Step**: compute C = b · t(b) (b images per rank, t measured per image; between measured
              batch sizes interpolated in log b), plus the part of the all-reduce the backward pass cannot
              hide: step = C + max(0, T − o·C). The trainer starts each gradient bucket's all-reduce as
              soon as backward has finished its layers, so o is at most the backward share of the step
              (\(f(p.backwardShare, 2)) for CNN-9); here o = \(f(p.overlap, 2)), \(p.calibration). ResNet-32 uses
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
        for fit in p.fits {
            md +=
                "| \(fit.rate) | \(f(fit.fp32.alpha * 1e6, 1)) | \(f(fit.fp32.gigabitsPerSecond, 2)) |"
                + " \(f(fit.bf16.alpha * 1e6, 1)) | \(f(fit.bf16.gigabitsPerSecond, 2)) |\n"
        }
        return md
    }

    /// The model against the measured 2-host runs; empty without them.
    static func modelCheckSection(_ p: Projection) -> String {
        guard !p.input.measured.isEmpty else { return "" }
        var md =
            "\nThe model against measured 2-host training (per-rank batch 64, Float32 gradients):\n\n| link | model"
            + " | measured img/s | model img/s |\n|---|---|---|---|\n"
        var gaps: [Double] = []
        for m in p.input.measured {
            if let fit = p.fits.first(where: { $0.rate == m.rate }),
                let step = p.stepModel(m.model, batch: 64, bf16: false)
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
        return md
    }

    /// One model and kind of scaling: the table of efficiencies per link and gradient type, its plot,
    /// and the 64-node CNN-9 weak-scaling efficiencies as name: value lines.
    static func projectionSection(
        _ p: Projection, model: String, kind: Scaling
    ) -> (markdown: String, file: String, plot: SVGPlot, lines: [String]) {
        let nodes = (0...8).map { 1 << $0 }
        var md =
            "\n## Projection: \(model), \(kind.rawValue) scaling (\(kind.batchText))\n\n"
            + "Efficiency (and job images/s) per node count:\n\n| link | gradients | "
            + nodes.map { "\($0)" }.joined(separator: " | ") + " |\n"
        md += "|---|---|" + nodes.map { _ in "---|" }.joined() + "\n"
        var lines: [String] = []
        var series: [SVGPlot.Series] = []
        for fit in p.fits {
            for bf16 in [false, true] {
                var cells: [String] = [], points: [(Double, Double)] = []
                for n in nodes {
                    guard let cell = projected(p, model, kind, fit, bf16: bf16, nodes: n) else { continue }
                    let efficiency = cell.efficiency
                    cells.append("\(f(efficiency, 2)) (\(f(cell.ips, 0)))")
                    points.append((log2(Double(n)), efficiency))
                    if kind == .weak && model == "cnn9" && n == 64 && !bf16 {
                        lines.append("projected-efficiency-64-nodes-cnn9-\(fit.rate): \(f(efficiency, 3))")
                    }
                }
                md += "| \(fit.rate) | \(bf16 ? "bf16" : "fp32") | " + cells.joined(separator: " | ") + " |\n"
                series.append(.init(name: "\(fit.rate) \(bf16 ? "bf16" : "fp32")", xy: points))
            }
        }
        var plot = SVGPlot(
            title: "\(model), \(kind.rawValue) scaling: projected parallel efficiency",
            xLabel: "nodes (log2: 0 = 1 node, 8 = 256)", yLabel: "efficiency", series: series)
        plot.yInclude = [0, 1]
        plot.integerX = true
        plot.showMarkers = true
        let file = "scaling-\(model)-\(kind.rawValue).svg"
        md += "\n![\(model) \(kind.rawValue) scaling](\(file))\n"
        return (md, file, plot, lines)
    }

    static func limitsSection(_ p: Projection) -> String {
        """

        ## Where the model stops holding

        - **Small per-rank batches.** Compute per image was measured at per-rank batches of
          \(Set(p.input.compute.map(\.batch)).sorted().map(String.init).joined(separator: " and ")); \
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
    }
}
