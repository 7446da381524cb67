// Branch-free float approximations that LLVM can vectorise. The decoupled operators evaluate
// tanh once per output element (K·P per image); glibc's scalar tanhf there costs as much as
// the convolution's GEMM, so the hot loops use these instead.

/// e^y for y ≤ 0 (clamped below at -87), relative error < 2e-7.
@inlinable @inline(__always)
public func fastExpNonPositive(_ y: Float) -> Float {
    let x = max(y, -87)
    // e^x = 2^n · e^f with n = round(x / ln2), |f| ≤ ln2/2. Adding 1.5·2^23 rounds to the nearest
    // integer in the float adder itself (x86-64's baseline SSE2 has no vector round instruction,
    // and a call to rintf would stop the loop from vectorising); n then sits in the low mantissa bits.
    let shifted = x * 1.442695041 + 12582912.0
    let n = shifted - 12582912.0
    let f = (x - n * 0.693359375) + n * 2.12194440e-4
    // Cephes' polynomial of e^f on [-ln2/2, ln2/2].
    var p: Float = 1.9875691500e-4
    p = p * f + 1.3981999507e-3
    p = p * f + 8.3334519073e-3
    p = p * f + 4.1665795894e-2
    p = p * f + 1.6666665459e-1
    p = p * f + 5.0000001201e-1
    let e = p * f * f + f + 1
    let exponentBits = (shifted.bitPattern &- 0x4B40_0000 &+ 127) << 23
    return e * Float(bitPattern: exponentBits)
}

/// tanh(x), absolute error < 3e-7, exact sign, smooth through 0.
@inlinable @inline(__always)
public func fastTanh(_ x: Float) -> Float {
    let a = min(abs(x), 9.0)
    let e = fastExpNonPositive(-2 * a)
    let big = (1 - e) / (1 + e)
    let a2 = a * a
    // Taylor near 0 avoids the cancellation in 1 - e.
    let small = a * (1 - a2 * (0.333333333 - a2 * 0.133333333))
    let t = a < 0.04 ? small : big
    return x < 0 ? -t : t
}

/// Σ x[i] with eight independent partial sums (a plain loop cannot be vectorised without
/// reassociation, and a single accumulator is latency-bound).
@inlinable
public func sumFloats(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    let raw = UnsafeRawPointer(x)
    while i + 8 <= n {
        acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += x[i]; i += 1 }
    return s
}

/// Σ x[i]·y[i] with eight partial sums.
@inlinable
public func dotFloats(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
    while i + 8 <= n {
        acc += rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            * ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += x[i] * y[i]; i += 1 }
    return s
}
