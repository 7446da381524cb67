import XCTest

@testable import MPI

/// Element types under test, with a lossless conversion from small Ints so expected
/// values can be computed exactly for every type.
protocol TestScalar: MPIScalar, Equatable, CustomStringConvertible {
    init(_ value: Int)
}
extension Float: TestScalar {}
extension Double: TestScalar {}
extension Int32: TestScalar {}
extension Int64: TestScalar {}
extension Int: TestScalar {}
extension UInt8: TestScalar {}
extension UInt16: TestScalar {}

/// Rank-dependent test pattern, small enough for UInt8 sums with a few dozen ranks and
/// exactly representable in Float: element `i` on `rank` of `size` ranks.
/// Even elements grow with rank, odd ones shrink, so max and min come from different
/// ranks at different positions.
@inline(__always)
func pattern(_ i: Int, rank: Int, size: Int) -> Int {
    let base = i % 7
    let ranked = i & 1 == 0 ? rank : size - 1 - rank
    return base + 3 * ranked
}

@inline(__always)
func expected(_ i: Int, size: Int, op: ReductionOp) -> Int {
    let base = i % 7
    switch op {
    case .sum: return size * base + 3 * size * (size - 1) / 2
    case .max: return base + 3 * (size - 1)
    case .min: return base
    }
}

/// The sequences above repeat every 14 elements; building them by doubling memcpy and
/// comparing with memcmp keeps the 1,000,000-element cases fast in unoptimized test
/// builds, where per-element generic code is slow.
func periodic<T: TestScalar>(_ count: Int, _ element: (Int) -> Int) -> [T] {
    let period = 14
    return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
        for i in 0..<min(period, count) { buffer.initializeElement(at: i, to: T(element(i))) }
        var filled = min(period, count)
        let raw = UnsafeMutableRawPointer(buffer.baseAddress)
        while filled < count {
            let chunk = min(filled, count - filled)
            raw!.advanced(by: filled * MemoryLayout<T>.stride)
                .copyMemory(from: raw!, byteCount: chunk * MemoryLayout<T>.stride)
            filled += chunk
        }
        initialized = count
    }
}

/// This rank's input: `pattern(i, rank:size:)` for i in 0..<count.
func input<T: TestScalar>(_ count: Int, rank: Int, size: Int) -> [T] {
    periodic(count) { pattern($0, rank: rank, size: size) }
}

/// The reduction of all ranks' inputs.
func reduced<T: TestScalar>(_ count: Int, size: Int, op: ReductionOp) -> [T] {
    periodic(count) { expected($0, size: size, op: op) }
}

/// Index of the first element where `got` and `want` differ bitwise, or nil.
func firstMismatch<T: TestScalar>(_ got: UnsafeBufferPointer<T>, _ want: [T]) -> Int? {
    if got.count != want.count { return min(got.count, want.count) }
    let same = want.withUnsafeBytes { w in
        w.count == 0 || memcmp(w.baseAddress!, UnsafeRawPointer(got.baseAddress!), w.count) == 0
    }
    if same { return nil }
    return (0..<got.count).first { got[$0] != want[$0] } ?? 0
}

func firstMismatch<T: TestScalar>(_ got: [T], _ want: [T]) -> Int? {
    got.withUnsafeBufferPointer { firstMismatch($0, want) }
}

/// Index of the first element that is not the reduction, or nil.
func firstMismatch<T: TestScalar>(_ buffer: UnsafeBufferPointer<T>, size: Int, op: ReductionOp) -> Int? {
    firstMismatch(buffer, reduced(buffer.count, size: size, op: op))
}

let testSizes = [0, 1, 7, 4099, 1_000_000]
let allOps: [ReductionOp] = [.sum, .max, .min]
