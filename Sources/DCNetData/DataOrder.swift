import DCNetRandom

/// What to do with the samples left over when the epoch size is not a multiple of the
/// global batch.
public enum RemainderPolicy: String, Sendable, CaseIterable {
    /// Skip the last partial batch: `count / globalBatch` full steps per epoch. The skipped
    /// samples differ from epoch to epoch because the permutation changes.
    case dropLast
    /// Fill the last batch by wrapping around to the start of this epoch's permutation:
    /// `ceil(count / globalBatch)` full steps; a few samples are seen twice in that epoch.
    /// Every step has exactly `globalBatch` samples (what distributed training wants).
    case wrap
}

/// Epoch order and its split over data-parallel ranks.
///
/// Every rank computes the same global permutation from (seed, epoch), takes the same global
/// batch for a step, and keeps an interleaved slice of it. Together with augmentation that is
/// a pure function of (seed, epoch, sample index), the union over ranks of what is trained on
/// in a step is independent of the number of ranks.
public enum DataOrder {
    /// Seed of the permutation generator for an epoch.
    @inlinable public static func epochSeed(seed: UInt64, epoch: Int) -> UInt64 {
        SplitMix64.hash(seed, UInt64(bitPattern: Int64(epoch)), 0x5045_524D /* "PERM" */)
    }

    /// A uniformly random permutation of `0..<count` (Fisher–Yates driven by
    /// xoshiro256** seeded from (seed, epoch)). Same on every rank and platform.
    /// The held-out validation images of a training set of `count`: `size` indices chosen by a
    /// fixed seed (the same for every run seed and rank count, so runs compare on the same images),
    /// and the remaining training indices, both in ascending order.
    public static func validationSplit(count: Int, size: Int) -> (train: [Int], validation: [Int]) {
        let chosen = permutation(count: count, seed: validationSeed, epoch: 0).prefix(max(0, min(size, count)))
        let validation = chosen.sorted()
        var held = [Bool](repeating: false, count: count)
        for i in validation { held[i] = true }
        return ((0..<count).filter { !held[$0] }, validation)
    }
    static let validationSeed: UInt64 = 0x7661_6C69_6461_7465  // "validate"

    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        precondition(count >= 0)
        var p = Array(0..<count)
        guard count > 1 else { return p }
        var rng = Xoshiro256StarStar(seed: epochSeed(seed: seed, epoch: epoch))
        p.withUnsafeMutableBufferPointer { b in
            for i in stride(from: count - 1, to: 0, by: -1) {
                let j = rng.nextInt(below: i + 1)
                b.swapAt(i, j)
            }
        }
        return p
    }

    /// Steps (global batches) per epoch under a remainder policy.
    public static func stepsPerEpoch(count: Int, globalBatch: Int, policy: RemainderPolicy) -> Int {
        precondition(globalBatch > 0 && count >= 0)
        switch policy {
        case .dropLast: return count / globalBatch
        case .wrap: return (count + globalBatch - 1) / globalBatch
        }
    }

    /// Dataset indices of global batch `step` of an epoch (positions
    /// `step*globalBatch ..< (step+1)*globalBatch` of the permutation; see `RemainderPolicy`
    /// for the last batch). `step` must be `< stepsPerEpoch(...)`.
    public static func globalBatchIndices(
        permutation: [Int], step: Int, globalBatch: Int,
        policy: RemainderPolicy
    ) -> [Int] {
        let n = permutation.count
        precondition(
            globalBatch > 0 && step >= 0 && step < stepsPerEpoch(count: n, globalBatch: globalBatch, policy: policy),
            "step \(step) out of range for \(n) samples, batch \(globalBatch), \(policy)")
        let start = step * globalBatch
        let end = start + globalBatch
        if end <= n { return Array(permutation[start..<end]) }
        switch policy {
        case .dropLast: fatalError("unreachable")
        case .wrap:
            var out = Array(permutation[start..<n])
            out.reserveCapacity(globalBatch)
            var k = 0
            while out.count < globalBatch { out.append(permutation[k % n]); k += 1 }
            return out
        }
    }

    /// This rank's part of a global batch: positions `rank, rank+size, rank+2·size, ...`
    /// (interleaved). Ranks' shard sizes differ by at most one; they are equal when
    /// `globalBatch % size == 0`.
    public static func shard<C: Collection>(_ globalBatch: C, rank: Int, size: Int) -> [Int] where C.Element == Int {
        precondition(size > 0 && rank >= 0 && rank < size, "rank \(rank) of \(size)")
        var out: [Int] = []
        out.reserveCapacity(globalBatch.count / size + 1)
        var pos = 0
        for idx in globalBatch {
            if pos % size == rank { out.append(idx) }
            pos += 1
        }
        return out
    }

    /// Number of samples rank `rank` gets from a global batch of `n` under `shard`.
    @inlinable public static func shardCount(globalBatch n: Int, rank: Int, size: Int) -> Int {
        n / size + (rank < n % size ? 1 : 0)
    }

    /// Contiguous evaluation range for `rank`: the ranges of ranks 0..<size tile `0..<count`
    /// exactly once, earlier ranks taking one extra when `count % size != 0`.
    public static func evaluationShard(count: Int, rank: Int, size: Int) -> Range<Int> {
        precondition(size > 0 && rank >= 0 && rank < size && count >= 0)
        let base = count / size, extra = count % size
        let start = rank * base + min(rank, extra)
        return start..<start + base + (rank < extra ? 1 : 0)
    }
}
