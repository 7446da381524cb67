import DCNetRandom
import XCTest

@testable import DCNetData

final class OrderTests: XCTestCase {
    func testPermutation() {
        for n in [0, 1, 2, 10, 1000] {
            let p = DataOrder.permutation(count: n, seed: 42, epoch: 0)
            XCTAssertEqual(p.sorted(), Array(0..<n))
        }
        let a = DataOrder.permutation(count: 1000, seed: 42, epoch: 0)
        XCTAssertEqual(a, DataOrder.permutation(count: 1000, seed: 42, epoch: 0))
        XCTAssertNotEqual(a, DataOrder.permutation(count: 1000, seed: 42, epoch: 1))
        XCTAssertNotEqual(a, DataOrder.permutation(count: 1000, seed: 43, epoch: 0))
        XCTAssertNotEqual(a, Array(0..<1000))
    }

    func testRNGStateRestore() {
        var r = Xoshiro256StarStar(seed: 9)
        for _ in 0..<10 { _ = r.next() }
        let saved = r.stateWords
        let expected = (0..<5).map { _ in r.next() }
        var r2 = Xoshiro256StarStar(state: saved)
        XCTAssertEqual((0..<5).map { _ in r2.next() }, expected)
        // Reference values: xoshiro256** with state {1, 2, 3, 4} (from the authors' C code).
        var ref = Xoshiro256StarStar(state: [1, 2, 3, 4])
        XCTAssertEqual([ref.next(), ref.next(), ref.next()], [11520, 0, 1509978240])
        // SplitMix64 reference (seed 1234567): first output 6457827717110365317.
        var sm = SplitMix64(seed: 1234567)
        XCTAssertEqual(sm.next(), 6457827717110365317)
        // Bounded draws are in range and roughly uniform.
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<7000 { counts[r.nextInt(below: 7)] += 1 }
        XCTAssert(counts.allSatisfy { (800...1200).contains($0) }, "\(counts)")
        var mean = 0.0, sq = 0.0
        for _ in 0..<20000 { let z = r.nextNormal(); mean += z; sq += z * z }
        XCTAssertEqual(mean / 20000, 0, accuracy: 0.05)
        XCTAssertEqual(sq / 20000, 1, accuracy: 0.05)
    }

    func testShardsCoverGlobalBatchExactlyOnce() {
        let perm = DataOrder.permutation(count: 103, seed: 1, epoch: 2)
        for policy in RemainderPolicy.allCases {
            for size in [1, 2, 3] {
                let steps = DataOrder.stepsPerEpoch(count: 103, globalBatch: 12, policy: policy)
                for step in 0..<steps {
                    let global = DataOrder.globalBatchIndices(
                        permutation: perm, step: step, globalBatch: 12, policy: policy)
                    var union: [Int] = []
                    for rank in 0..<size {
                        let s = DataOrder.shard(global, rank: rank, size: size)
                        XCTAssertEqual(s.count, DataOrder.shardCount(globalBatch: global.count, rank: rank, size: size))
                        // Interleaved: position r, r+size, ...
                        XCTAssertEqual(s, stride(from: rank, to: global.count, by: size).map { global[$0] })
                        union += s
                    }
                    XCTAssertEqual(union.sorted(), global.sorted(), "\(policy) size \(size) step \(step)")
                }
            }
        }
    }

    func testRemainderPolicies() {
        let perm = DataOrder.permutation(count: 10, seed: 5, epoch: 0)
        XCTAssertEqual(DataOrder.stepsPerEpoch(count: 10, globalBatch: 4, policy: .dropLast), 2)
        XCTAssertEqual(DataOrder.stepsPerEpoch(count: 10, globalBatch: 4, policy: .wrap), 3)
        XCTAssertEqual(
            DataOrder.globalBatchIndices(permutation: perm, step: 2, globalBatch: 4, policy: .wrap),
            [perm[8], perm[9], perm[0], perm[1]])
        // Epoch covered: dropLast sees 8 distinct, wrap sees all 10.
        var seen = Set<Int>()
        for s in 0..<3 {
            seen.formUnion(DataOrder.globalBatchIndices(permutation: perm, step: s, globalBatch: 4, policy: .wrap))
        }
        XCTAssertEqual(seen.count, 10)
        // Batch larger than the data set wraps repeatedly.
        let w = DataOrder.globalBatchIndices(permutation: [2, 0, 1], step: 0, globalBatch: 7, policy: .wrap)
        XCTAssertEqual(w, [2, 0, 1, 2, 0, 1, 2])
    }

    func testEvaluationShards() {
        for (count, size) in [(10_001, 3), (10_000, 3), (5, 8), (0, 2), (7, 1)] {
            var covered: [Int] = []
            var last = 0
            for rank in 0..<size {
                let r = DataOrder.evaluationShard(count: count, rank: rank, size: size)
                XCTAssertEqual(r.lowerBound, last)  // contiguous, in rank order
                last = r.upperBound
                covered += Array(r)
            }
            XCTAssertEqual(covered, Array(0..<count), "count \(count) size \(size)")
        }
        XCTAssertEqual(DataOrder.evaluationShard(count: 10_001, rank: 0, size: 3), 0..<3334)
        XCTAssertEqual(DataOrder.evaluationShard(count: 10_001, rank: 2, size: 3), 6668..<10_001)
    }

    /// The whole point: the samples (and augmented pixels) a step trains on do not depend on
    /// the number of ranks.
    func testRankIndependentAugmentedBatch() {
        let images = syntheticImages(count: 40, variant: .cifar10)
        let perm = DataOrder.permutation(count: 40, seed: 3, epoch: 1)
        let global = DataOrder.globalBatchIndices(permutation: perm, step: 1, globalBatch: 12, policy: .dropLast)
        func batch(_ idx: [Int]) -> [[Float]] {
            var px = [Float](repeating: 0, count: idx.count * 3072); var lb = [Int32](repeating: 0, count: idx.count)
            px.withUnsafeMutableBufferPointer { p in
                lb.withUnsafeMutableBufferPointer { l in
                    fillBatch(
                        images: images, indices: idx, epoch: 1, seed: 3, augment: true, into: p.baseAddress!,
                        labels: l.baseAddress!)
                }
            }
            return (0..<idx.count).map { Array(px[$0 * 3072..<($0 + 1) * 3072]) }
        }
        let single = batch(global)
        for size in [2, 3] {
            var byIndex: [Int: [Float]] = [:]
            for rank in 0..<size {
                let s = DataOrder.shard(global, rank: rank, size: size)
                for (k, img) in batch(s).enumerated() { byIndex[s[k]] = img }
            }
            for (k, i) in global.enumerated() { XCTAssertEqual(byIndex[i], single[k]) }
        }
    }
}
