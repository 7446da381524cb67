/// bfloat16 conversion kernels for the GEMM operands of bf16 compute. A bfloat16 is the top 16 bits
/// of a Float (8-bit exponent, 7 stored mantissa bits): rounding to it has relative error at most
/// 2⁻⁹ (half a unit in the last place; the operand tolerance 2⁻⁸ of the tests is one unit).
///
/// The loops are branch-free (a select for NaN), so they vectorise.
public enum BFloat16Conversion {
    /// The bfloat16 word nearest `value`, ties to even; NaN stays NaN (quiet bit set, sign kept),
    /// infinities stay infinite, and values above the largest bfloat16 round to infinity.
    @inlinable @inline(__always)
    public static func word(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
        let isNaN = bits & 0x7FFF_FFFF > 0x7F80_0000
        return UInt16(truncatingIfNeeded: isNaN ? (bits >> 16) | 0x0040 : rounded)
    }

    @inlinable @inline(__always)
    public static func float(_ word: UInt16) -> Float { Float(bitPattern: UInt32(word) << 16) }

    /// `value` rounded to the nearest bfloat16, as a Float.
    @inlinable @inline(__always)
    public static func rounded(_ value: Float) -> Float { float(word(value)) }

    /// y[i] = bf16(x[i]) for i < count.
    @inlinable
    public static func round(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<UInt16>) {
        for i in 0..<count { y[i] = word(x[i]) }
    }

    /// The rows × columns matrix at `x` (leading dimension `ld`) rounded into packed `y`
    /// (leading dimension `columns`).
    @inlinable
    public static func round(
        _ x: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int, into y: UnsafeMutablePointer<UInt16>
    ) {
        if ld == columns { return round(x, count: rows * columns, into: y) }
        for r in 0..<rows { round(x + r * ld, count: columns, into: y + r * columns) }
    }

    /// y[i] = Float(bf16(x[i])): the operand rounding of the reference path, kept in Float.
    @inlinable
    public static func roundInFloat(
        _ x: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int, into y: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let src = x + r * ld, dst = y + r * columns
            for i in 0..<columns { dst[i] = rounded(src[i]) }
        }
    }

    /// y[i] = Float(x[i]) (exact).
    @inlinable
    public static func widen(_ x: UnsafePointer<UInt16>, count: Int, into y: UnsafeMutablePointer<Float>) {
        for i in 0..<count { y[i] = float(x[i]) }
    }
}
