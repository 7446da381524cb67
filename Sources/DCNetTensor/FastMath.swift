// Branch-free float approximations that LLVM can vectorise. The decoupled operators evaluate
// tanh once per output element (K·P per image); glibc's scalar tanhf there costs as much as
// the convolution's GEMM, so the hot loops use these instead.

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
