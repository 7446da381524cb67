import Foundation

/// A latency–bandwidth model of data-parallel training, fitted to measurements on a small cluster
/// and projected to many nodes (`scripts/bench scaling` → docs/scaling.md).
///
/// The all-reduce is modelled as a ring: with n ranks and S bytes it takes 2(n−1) steps, each
/// paying a latency α and moving S/n bytes over a link of bandwidth β, so
/// T(n, S) = 2(n−1)·α + 2·(n−1)/n · S/β. (OpenMPI picks other algorithms for some sizes; the ring
/// is the bandwidth-optimal bound that large gradient buckets approach.) With two ranks this is
/// T = 2α + S/β, a straight line in S, which is what the two-host sweep measures and fits.
public struct RingAllReduceModel: Sendable, Equatable {
    /// Seconds per ring step (latency of one message exchange).
    public var alpha: Double
    /// Bytes per second of one link.
    public var beta: Double

    public init(alpha: Double, beta: Double) { self.alpha = alpha; self.beta = beta }

    /// Least-squares fit of T = 2α + S/β to two-rank measurements (bytes, seconds). Sizes should
    /// span latency- and bandwidth-bound messages; a negative intercept (latency hidden in noise)
    /// is clamped to zero.
    public static func fitTwoRanks(_ points: [(bytes: Double, seconds: Double)]) -> RingAllReduceModel? {
        guard points.count >= 2 else { return nil }
        // Weighted by 1/T² so that the small (latency) and large (bandwidth) messages both count:
        // plain least squares would let the 64 MB point decide everything.
        var sw = 0.0, sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0
        for p in points where p.seconds > 0 {
            let w = 1 / (p.seconds * p.seconds)
            sw += w; sx += w * p.bytes; sy += w * p.seconds
            sxx += w * p.bytes * p.bytes; sxy += w * p.bytes * p.seconds
        }
        let det = sw * sxx - sx * sx
        guard det > 0 else { return nil }
        let slope = (sw * sxy - sx * sy) / det
        let intercept = (sy - slope * sx) / sw
        guard slope > 0 else { return nil }
        return RingAllReduceModel(alpha: max(intercept, 0) / 2, beta: 1 / slope)
    }

    /// Seconds for one all-reduce of `bytes` over `ranks` ranks.
    public func time(ranks: Int, bytes: Double) -> Double {
        guard ranks > 1 else { return 0 }
        let n = Double(ranks)
        return 2 * (n - 1) * alpha + 2 * (n - 1) / n * bytes / beta
    }

    /// Link bandwidth in Gbit/s.
    public var gigabitsPerSecond: Double { beta * 8 / 1e9 }
}

/// One training step on n ranks: compute, then whatever part of the gradient all-reduce the
/// backward pass could not hide.
public struct StepModel: Sendable, Equatable {
    /// Seconds of compute (forward + backward + update) per image on one rank.
    public var secondsPerImage: Double
    /// Bytes all-reduced per step (parameters × 4, or × 2 with bfloat16 gradients).
    public var gradientBytes: Double
    /// Fraction of the compute time the all-reduce can overlap: the backward pass after the first
    /// bucket is ready (the trainer starts each bucket as soon as its layers are done).
    public var overlap: Double

    public init(secondsPerImage: Double, gradientBytes: Double, overlap: Double) {
        self.secondsPerImage = secondsPerImage
        self.gradientBytes = gradientBytes
        self.overlap = overlap
    }

    /// Seconds per step with `perRankBatch` images per rank on `ranks` ranks.
    public func stepSeconds(ranks: Int, perRankBatch: Double, network: RingAllReduceModel) -> Double {
        let compute = perRankBatch * secondsPerImage
        let communication = network.time(ranks: ranks, bytes: gradientBytes)
        return compute + max(0, communication - overlap * compute)
    }

    /// Images per second of the whole job.
    public func imagesPerSecond(ranks: Int, perRankBatch: Double, network: RingAllReduceModel) -> Double {
        Double(ranks) * perRankBatch / stepSeconds(ranks: ranks, perRankBatch: perRankBatch, network: network)
    }

    /// Throughput over `ranks` × the one-rank throughput at the same per-rank batch.
    public func efficiency(ranks: Int, perRankBatch: Double, network: RingAllReduceModel) -> Double {
        (perRankBatch * secondsPerImage) / stepSeconds(ranks: ranks, perRankBatch: perRankBatch, network: network)
    }
}
