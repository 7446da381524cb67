#if canImport(Glibc)
import Glibc
#endif
/// Shape of an activation batch in NCHW layout (a flat feature vector is `h = w = 1`).
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    public var n: Int, c: Int, h: Int, w: Int
    public init(n: Int, c: Int, h: Int = 1, w: Int = 1) {
        self.n = n; self.c = c; self.h = h; self.w = w
    }
    public var count: Int { n * c * h * w }
    /// Elements of one sample (c·h·w).
    public var perSample: Int { c * h * w }
    public var spatial: Int { h * w }
    public var description: String { "[\(n)×\(c)×\(h)×\(w)]" }
}

/// A float32 view into memory owned by an `Arena`: contiguous, NCHW, no ownership.
///
/// Views are cheap value types; the arena that handed out the memory must outlive them.
public struct Tensor: @unchecked Sendable {
    public let data: UnsafeMutablePointer<Float>
    public let shape: Shape
    public init(data: UnsafeMutablePointer<Float>, shape: Shape) {
        self.data = data; self.shape = shape
    }
    @inlinable public var count: Int { shape.count }
    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: data, count: count) }
    /// Pointer to sample `i` of the batch.
    @inlinable public func sample(_ i: Int) -> UnsafeMutablePointer<Float> { data + i * shape.perSample }
    public func zero() { data.update(repeating: 0, count: count) }
    public func fill(_ v: Float) { data.update(repeating: v, count: count) }
    public func copy(from other: Tensor) {
        alwaysPrecondition(other.count == count, "copy between tensors of \(other.shape) and \(shape)")
        data.update(from: other.data, count: count)
    }
    /// The same memory seen with another shape of equal element count.
    public func reshaped(_ s: Shape) -> Tensor {
        alwaysPrecondition(s.count == count, "reshape \(shape) to \(s)")
        return Tensor(data: data, shape: s)
    }
    /// The first `n` samples of the batch (for a final partial batch).
    public func prefix(samples n: Int) -> Tensor {
        alwaysPrecondition(n >= 0 && n <= shape.n, "prefix of \(n) samples of \(shape)")
        var s = shape; s.n = n
        return Tensor(data: data, shape: s)
    }
    public func toArray() -> [Float] { Array(buffer) }
}

/// Owns the Float buffers (and index tables) of a model or workspace: allocated once, zeroed,
/// 64-byte aligned, freed together. Layers take their activations, gradients and scratch space
/// from an arena when the model is built. A few small buffers of other types are not in it: max
/// pooling's argmax indices, the softmax head's predictions and BatchNorm's Double sums are
/// allocated by their layers in `build` and freed at deinit. Either way a training step never
/// allocates.
public final class Arena: @unchecked Sendable {
    private var blocks: [UnsafeMutableRawPointer] = []
    public private(set) var bytes = 0
    public init() {}

    public func floats(_ count: Int) -> UnsafeMutablePointer<Float> { zeroed(count, of: Float.self) }
    /// Zeroed integers (index tables built once with the layers).
    public func integers(_ count: Int) -> UnsafeMutablePointer<Int> { zeroed(count, of: Int.self) }
    /// Zeroed 16-bit words (bfloat16 copies of GEMM operands).
    public func halfWords(_ count: Int) -> UnsafeMutablePointer<UInt16> { zeroed(count, of: UInt16.self) }
    /// Buffers from this size up are backed by transparent huge pages where the kernel offers them.
    static let hugePageBytes = 2 << 20

    private func zeroed<T: Numeric>(_ count: Int, of type: T.Type) -> UnsafeMutablePointer<T> {
        let n = max(count, 1), byteCount = n * MemoryLayout<T>.stride
        let raw: UnsafeMutableRawPointer
        if byteCount >= Self.hugePageBytes {
            // Activations, transformed tiles and gradients are streamed in many strided runs at
            // once (a Winograd transform touches 36 of them); with 4 KiB pages those walks miss the
            // TLB constantly. Huge pages need 2 MiB alignment and the advice before the first touch,
            // which the zeroing below is.
            let rounded = (byteCount + Self.hugePageBytes - 1) / Self.hugePageBytes * Self.hugePageBytes
            raw = UnsafeMutableRawPointer.allocate(byteCount: rounded, alignment: Self.hugePageBytes)
            #if os(Linux)
            _ = madvise(raw, rounded, MADV_HUGEPAGE)  // advice only: without THP the pages stay small
            #endif
        } else {
            raw = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
        }
        raw.initializeMemory(as: T.self, repeating: 0, count: n)
        blocks.append(raw)
        bytes += byteCount
        return raw.assumingMemoryBound(to: T.self)
    }
    public func tensor(_ shape: Shape) -> Tensor { Tensor(data: floats(shape.count), shape: shape) }

    deinit { for b in blocks { b.deallocate() } }
}

/// A check that stays on in every build. The kernel modules are compiled with -Ounchecked, which
/// turns `precondition` into an assumption; the checks that guard memory (shapes when layers are
/// built, tensor views and copies, convolution geometry) use this instead. They run once per layer
/// build or per call, never per element, so they cost nothing measurable.
@inline(__always)
public func alwaysPrecondition(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "",
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fatalError(message(), file: file, line: line) }
}
