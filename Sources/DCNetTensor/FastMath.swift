// Branch-free float approximations that LLVM can vectorise. The decoupled operators evaluate
// their magnitude and angular functions once per output element (K·P per image); a glibc call
// there (tanhf, acosf, expf, log1pf) keeps the whole element loop scalar and costs more than the
// convolution's GEMM, so the hot loops use these instead.

/// a·b + c: one fused instruction where the kernels are compiled for a CPU with FMA (arm64, or
/// x86-64 with DCNET_FMA from Package.swift), two otherwise. The polynomials below are chains of
/// these, so fusing halves their latency.
@inlinable @inline(__always)
public func multiplyAdd(_ a: Float, _ b: Float, _ c: Float) -> Float {
    #if DCNET_FMA || arch(arm64)
    return c.addingProduct(a, b)
    #else
    return a * b + c
    #endif
}

/// tanh(x), absolute error < 4e-7, exact sign (odd), smooth through 0: |x|·P(x²)/Q(x²) with
/// degree-4 polynomials, clamped at |x| = 9 where tanh is 1 in float. The coefficients are a
/// minimax fit of the absolute error on [0, 9] (2.5e-8 in exact arithmetic; the rest is float
/// rounding). Against tanh via e^(-2|x|), this is half the instructions, and the two Horner chains
/// are independent, which matters in the decoupled operators' element loops (latency-bound).
@inlinable @inline(__always)
public func fastTanh(_ x: Float) -> Float {
    let a = min(abs(x), 9.0)
    let z = a * a
    var p: Float = 1.321347526e-8
    p = multiplyAdd(p, z, 2.049551062e-5)
    p = multiplyAdd(p, z, 3.488126536e-3)
    p = multiplyAdd(p, z, 1.337453075e-1)
    p = multiplyAdd(p, z, 9.999999062e-1)
    var q: Float = 7.715404043e-7
    q = multiplyAdd(q, z, 3.273838589e-4)
    q = multiplyAdd(q, z, 2.584795803e-2)
    q = multiplyAdd(q, z, 4.670782871e-1)
    q = multiplyAdd(q, z, 1)
    let t = min(a * p / q, 1)
    return Float(signOf: x, magnitudeOf: t)
}

/// e^x, relative error < 2e-7 on [-87, 88] (x is clamped to that range, so the result is a
/// normal float).
@inlinable @inline(__always)
public func fastExp(_ y: Float) -> Float {
    let x = min(max(y, -87), 88)
    // e^x = 2^n · e^f with n = round(x / ln2), |f| ≤ ln2/2. Adding 1.5·2^23 rounds to the nearest
    // integer in the float adder itself (x86-64's baseline SSE2 has no vector round instruction,
    // and a call to rintf would stop the loop from vectorising); n then sits in the low mantissa bits.
    let shifted = multiplyAdd(x, 1.442695041, 12582912.0)
    let n = shifted - 12582912.0
    let f = multiplyAdd(n, 2.12194440e-4, multiplyAdd(n, -0.693359375, x))
    // Cephes' polynomial of e^f on [-ln2/2, ln2/2].
    var p: Float = 1.9875691500e-4
    p = multiplyAdd(p, f, 1.3981999507e-3)
    p = multiplyAdd(p, f, 8.3334519073e-3)
    p = multiplyAdd(p, f, 4.1665795894e-2)
    p = multiplyAdd(p, f, 1.6666665459e-1)
    p = multiplyAdd(p, f, 5.0000001201e-1)
    let e = multiplyAdd(p * f, f, f + 1)
    let exponentBits = (shifted.bitPattern &- 0x4B40_0000 &+ 127) << 23
    return e * Float(bitPattern: exponentBits)
}

/// acos(c) for c in [-1, 1] (clamped), absolute error < 5e-7: acos(|c|) = sqrt(1 − |c|)·P(|c|)
/// with P of degree 7, a minimax fit of the absolute error on [0, 1], and acos(c) = π − acos(|c|)
/// for c < 0.
@inlinable @inline(__always)
public func fastAcos(_ c: Float) -> Float {
    let a = min(abs(c), 1)
    var p: Float = -1.441442185e-3
    p = multiplyAdd(p, a, 7.245317204e-3)
    p = multiplyAdd(p, a, -1.780880392e-2)
    p = multiplyAdd(p, a, 3.133534497e-2)
    p = multiplyAdd(p, a, -5.031273831e-2)
    p = multiplyAdd(p, a, 8.899925628e-2)
    p = multiplyAdd(p, a, -2.145998918e-1)
    p = multiplyAdd(p, a, 1.570796314)
    let r = (1 - a).squareRoot() * p
    return c < 0 ? Float.pi - r : r
}

/// log(1 + x) for x ≥ 0, relative error < 1e-6: u = 1 + x = 2^e·m with m in [√½, √2), and
/// log m = 2·atanh((m − 1)/(m + 1)) by its odd series to the 9th power (|t| ≤ 0.172). The last
/// term restores what rounding 1 + x lost, so small x keep their relative accuracy.
@inlinable @inline(__always)
public func fastLog1p(_ x: Float) -> Float {
    let u = 1 + x
    // Scale u by 2^-e so that m lands in [√½, √2): move the exponent of u·√2 out.
    let bits = (u * 1.41421356).bitPattern
    let e = Int32(bitPattern: bits >> 23) &- 127
    let m = Float(bitPattern: UInt32(bitPattern: Int32(bitPattern: u.bitPattern) &- (e << 23)))
    let t = (m - 1) / (m + 1), t2 = t * t
    var q: Float = 1.0 / 9
    q = multiplyAdd(q, t2, 1.0 / 7)
    q = multiplyAdd(q, t2, 1.0 / 5)
    q = multiplyAdd(q, t2, 1.0 / 3)
    q = multiplyAdd(q, t2, 1)
    let logU = multiplyAdd(Float(e), 0.693147181, 2 * t * q)
    return logU + (x - (u - 1)) / u
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
        acc +=
            rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            * ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += x[i] * y[i]; i += 1 }
    return s
}
