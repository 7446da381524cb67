import BLAS
import DCNetTensor
import MPI

/// What travels on the wire when gradients are averaged (`--gradient-compression`).
public enum GradientCompression: String, Sendable, CaseIterable, Codable {
    /// Float32 on the wire.
    case none
    /// bfloat16 on the wire: half the bytes, gradients rounded to 8 significant bits (after the
    /// local backward and at each pairwise reduction step).
    case bf16
}

/// Averages gradients over ranks in buckets, overlapping communication with backward.
///
/// The flat gradient buffer is cut into buckets of whole top-level layers, last layer first (the
/// order backward produces them). When backward finishes a layer, every bucket whose layers are all
/// done starts its nonblocking all-reduce; between layers, `progress()` tests outstanding requests
/// so OpenMPI advances them. Buckets start in the same order on every rank, so the collectives match.
///
/// With bfloat16 compression a bucket is rounded to bfloat16 into a staging buffer when it starts,
/// reduced as bfloat16 (half the bytes on the wire), and widened back when the update waits for it.
public final class GradientExchange {
    let communicator: Communicator
    let gradients: UnsafeMutablePointer<Float>
    /// What owns the memory of `gradients` (the network's arena): each bucket's request keeps it
    /// alive, so an error that drops the all-reduces in flight cannot free what MPI still writes.
    private let gradientsOwner: AnyObject
    /// Buckets as flat ranges, in the order they are reduced, with the first layer each one needs.
    let buckets: [(range: Range<Int>, firstLayer: Int)]
    private let layerCount: Int
    private var requests: [Request?]
    public let compression: GradientCompression
    /// bfloat16 copies of the buckets in flight (compression only), owned like `gradients`.
    private let stagingBuffer: StagingBuffer?
    private var staging: UnsafeMutablePointer<BFloat16>? { stagingBuffer?.pointer }
    private var nextBucket = 0
    /// Summed gradients of the step's earlier micro-batches (`--accumulate`), added to each bucket
    /// just before its all-reduce starts, so accumulation costs no second pass and no extra
    /// all-reduce; nil without accumulation.
    private var accumulated: UnsafeMutablePointer<Float>?
    /// Whether every bucket this rank contributed in the current step was finite before the
    /// all-reduce mixed it with the others' (afterwards one rank's NaN is on every rank).
    public private(set) var localGradientsFinite = true
    /// Seconds spent waiting after backward ended in the last `finish()` (the exposed communication).
    public private(set) var exposedSeconds: Double = 0

    /// `gradients` lives in memory owned by `owner` (the network's arena).
    public init(
        communicator: Communicator, gradients: UnsafeMutablePointer<Float>, owner: AnyObject,
        layerRanges: [Range<Int>], bucketBytes: Int, compression: GradientCompression = .none
    ) {
        self.communicator = communicator
        self.gradients = gradients
        self.gradientsOwner = owner
        self.compression = compression
        layerCount = layerRanges.count
        var result: [(Range<Int>, Int)] = []
        var end: Int? = nil, start = 0, first = layerRanges.count
        for i in layerRanges.indices.reversed() where !layerRanges[i].isEmpty {
            let r = layerRanges[i]
            if end == nil { end = r.upperBound }
            start = r.lowerBound; first = i
            if (end! - start) * 4 >= bucketBytes {
                result.append((start..<end!, first)); end = nil
            }
        }
        if let e = end { result.append((start..<e, first)) }
        buckets = result
        requests = Array(repeating: nil, count: result.count)
        let total = result.map(\.0.upperBound).max() ?? 0
        stagingBuffer = compression == .bf16 && communicator.size > 1 ? StagingBuffer(count: max(total, 1)) : nil
    }

    /// The bfloat16 staging memory, an object so that requests in flight can keep it alive.
    private final class StagingBuffer {
        let pointer: UnsafeMutablePointer<BFloat16>
        init(count: Int) { pointer = .allocate(capacity: count) }
        deinit { pointer.deallocate() }
    }

    public var bucketCount: Int { buckets.count }

    /// The top-level layers whose gradients bucket `i` carries.
    public func layers(ofBucket i: Int) -> ClosedRange<Int> {
        let last = i == 0 ? layerCount - 1 : buckets[i - 1].firstLayer - 1
        return buckets[i].firstLayer...last
    }

    /// Told when a bucket's all-reduce starts (false) and when this rank sees it complete (true):
    /// the timeline's all-reduce track. Nil costs nothing.
    public var observeBucket: ((Int, Bool) -> Void)?
    /// Hooks for the tests of failure handling (`DCNET_FAULT`); nil costs nothing. Handed this
    /// rank's gradients of a bucket just before its all-reduce would start (one rank alone, too).
    public var beforeBucketStarts: ((UnsafeMutableBufferPointer<Float>) -> Void)?
    /// Called by `finish()` before it waits: every all-reduce of the step is in flight.
    public var beforeWaiting: (() throws -> Void)?

    /// Call before the backward whose gradients are to be averaged; `adding` holds gradients of
    /// earlier micro-batches of the same step to add first.
    public func begin(adding accumulated: UnsafeMutablePointer<Float>? = nil) {
        nextBucket = 0
        localGradientsFinite = true
        self.accumulated = accumulated
        for i in requests.indices { requests[i] = nil }
    }

    /// Backward has finished layer `layer` (and every later one): start the buckets now complete.
    public func layerDone(_ layer: Int) throws {
        guard communicator.size > 1 || accumulated != nil || beforeBucketStarts != nil else { return }
        while nextBucket < buckets.count && buckets[nextBucket].firstLayer >= layer {
            let r = buckets[nextBucket].range
            if let accumulated {
                BLAS.saxpy(count: r.count, alpha: 1, x: accumulated + r.lowerBound, y: gradients + r.lowerBound)
            }
            beforeBucketStarts?(UnsafeMutableBufferPointer(start: gradients + r.lowerBound, count: r.count))
            if communicator.size == 1 {
                nextBucket += 1
                continue
            }
            if localGradientsFinite && !sumFloats(gradients + r.lowerBound, r.count).isFinite {
                localGradientsFinite = false
            }
            if let stagingBuffer {
                let staging = stagingBuffer.pointer
                for i in r { staging[i] = BFloat16(gradients[i]) }
                requests[nextBucket] = try communicator.iAllReduce(
                    UnsafeMutableBufferPointer(start: staging + r.lowerBound, count: r.count), op: .sum,
                    owner: stagingBuffer)
            } else {
                requests[nextBucket] = try communicator.iAllReduce(
                    UnsafeMutableBufferPointer(start: gradients + r.lowerBound, count: r.count), op: .sum,
                    owner: gradientsOwner)
            }
            observeBucket?(nextBucket, false)
            nextBucket += 1
        }
        try progress()
    }

    /// Lets MPI advance outstanding reductions (OpenMPI progresses nonblocking collectives inside calls).
    public func progress() throws {
        for (i, request) in requests.enumerated() {
            guard let request, !request.isComplete else { continue }
            if try request.test() { observeBucket?(i, true) }
        }
    }

    /// Waits for every bucket and divides by the rank count once.
    public func finish() throws {
        try beforeWaiting?()
        let start = MPIRuntime.wallTime()
        if communicator.size > 1 {
            precondition(nextBucket == buckets.count, "backward did not finish every layer")
            for (i, request) in requests.enumerated() {
                communicator.watchdog?.enter("gradient all-reduce, bucket", part: (i, requests.count))
                guard let request, !request.isComplete else { continue }
                try request.wait()
                observeBucket?(i, true)
            }
        }
        exposedSeconds = MPIRuntime.wallTime() - start
        if communicator.size > 1, let total = buckets.map(\.range.upperBound).max() {
            let scale = 1 / Float(communicator.size)
            if let staging {
                for bucket in buckets {
                    for i in bucket.range { gradients[i] = staging[i].float * scale }
                }
            } else {
                BLAS.sscal(count: total, alpha: scale, x: gradients)
            }
        }
    }
}
