// The one-dimensional transforms of F(4×4, 3×3) and the tile gathers that Winograd.swift builds on.

// MARK: - One-dimensional transforms over a run of tiles
// Each reads element i of its input at src + i·srcStride and writes element j at dst + j·dstStride,
// for `count` contiguous tiles, 8 at a time in explicit SIMD: with a dozen runtime strides LLVM
// cannot prove the streams disjoint and leaves plain loops scalar.

/// Runs `body` over the tiles in vectors of 8, then over the remainder one lane at a time.
@inline(__always)
func forEachVector(
    _ n: Int,
    _ body: (
        Int, (UnsafePointer<Float>, Int) -> SIMD8<Float>,
        (UnsafeMutablePointer<Float>, Int, SIMD8<Float>) -> Void
    ) -> Void
) {
    var t = 0
    while t + 8 <= n {
        body(
            t, { p, i in UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self) },
            { p, i, v in UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD8<Float>.self) })
        t += 8
    }
    while t < n {
        body(t, { p, i in SIMD8<Float>(repeating: p[i]) }, { p, i, v in p[i] = v[0] })
        t += 1
    }
}

/// Bᵀ d: 6 → 6 (interpolation points 0, ±1, ±2, ∞).
@inline(__always)
func inputTransform(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int) {
    forEachVector(n) { t, load, store in
        let d0 = load(s, t), d1 = load(s, ss + t), d2 = load(s, 2 * ss + t)
        let d3 = load(s, 3 * ss + t), d4 = load(s, 4 * ss + t), d5 = load(s, 5 * ss + t)
        store(d, t, 4 * d0 - 5 * d2 + d4)
        store(d, ds + t, d3 + d4 - 4 * (d1 + d2))
        store(d, 2 * ds + t, d4 - d3 + 4 * (d1 - d2))
        store(d, 3 * ds + t, d4 - d2 + 2 * (d3 - d1))
        store(d, 4 * ds + t, d4 - d2 - 2 * (d3 - d1))
        store(d, 5 * ds + t, 4 * d1 - 5 * d3 + d5)
    }
}

/// B v, the adjoint of `inputTransform`: 6 → 6.
@inline(__always)
func inputTransformAdjoint(
    _ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int
) {
    forEachVector(n) { t, load, store in
        let v0 = load(s, t), v1 = load(s, ss + t), v2 = load(s, 2 * ss + t)
        let v3 = load(s, 3 * ss + t), v4 = load(s, 4 * ss + t), v5 = load(s, 5 * ss + t)
        store(d, t, 4 * v0)
        store(d, ds + t, 4 * (v2 - v1 + v5) + 2 * (v4 - v3))
        store(d, 2 * ds + t, -5 * v0 - 4 * (v1 + v2) - v3 - v4)
        store(d, 3 * ds + t, v1 - v2 + 2 * (v3 - v4) - 5 * v5)
        store(d, 4 * ds + t, v0 + v1 + v2 + v3 + v4)
        store(d, 5 * ds + t, v5)
    }
}

/// Aᵀ m: 6 → 4.
@inline(__always)
func outputTransform(
    _ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int
) {
    forEachVector(n) { t, load, store in
        let m0 = load(s, t), m1 = load(s, ss + t), m2 = load(s, 2 * ss + t)
        let m3 = load(s, 3 * ss + t), m4 = load(s, 4 * ss + t), m5 = load(s, 5 * ss + t)
        let p12 = m1 + m2, d12 = m1 - m2, p34 = m3 + m4, d34 = m3 - m4
        store(d, t, m0 + p12 + p34)
        store(d, ds + t, d12 + 2 * d34)
        store(d, 2 * ds + t, p12 + 4 * p34)
        store(d, 3 * ds + t, d12 + 8 * d34 + m5)
    }
}

/// A y, the adjoint of `outputTransform`: 4 → 6.
@inline(__always)
func outputTransformAdjoint(
    _ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int
) {
    forEachVector(n) { t, load, store in
        let y0 = load(s, t), y1 = load(s, ss + t), y2 = load(s, 2 * ss + t), y3 = load(s, 3 * ss + t)
        let even = y0 + y2, odd = y1 + y3, even4 = y0 + 4 * y2, odd8 = 2 * y1 + 8 * y3
        store(d, t, y0)
        store(d, ds + t, even + odd)
        store(d, 2 * ds + t, even - odd)
        store(d, 3 * ds + t, even4 + odd8)
        store(d, 4 * ds + t, even4 - odd8)
        store(d, 5 * ds + t, y3)
    }
}

/// G g: 3 → 6.
@inline(__always)
func filterTransform(
    _ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int
) {
    forEachVector(n) { t, load, store in
        let g0 = load(s, t), g1 = load(s, ss + t), g2 = load(s, 2 * ss + t)
        let a = g0 + g2, b = g0 * (1 / 24) + g2 * (1 / 6)
        store(d, t, g0 * 0.25)
        store(d, ds + t, (a + g1) * (-1 / 6))
        store(d, 2 * ds + t, (a - g1) * (-1 / 6))
        store(d, 3 * ds + t, b + g1 * (1 / 12))
        store(d, 4 * ds + t, b - g1 * (1 / 12))
        store(d, 5 * ds + t, g2)
    }
}

/// Gᵀ u, the adjoint of `filterTransform`: 6 → 3.
@inline(__always)
func filterTransformAdjoint(
    _ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int
) {
    forEachVector(n) { t, load, store in
        let u0 = load(s, t), u1 = load(s, ss + t), u2 = load(s, 2 * ss + t)
        let u3 = load(s, 3 * ss + t), u4 = load(s, 4 * ss + t), u5 = load(s, 5 * ss + t)
        store(d, t, u0 * 0.25 - (u1 + u2) * (1 / 6) + (u3 + u4) * (1 / 24))
        store(d, ds + t, (u2 - u1) * (1 / 6) + (u3 - u4) * (1 / 12))
        store(d, 2 * ds + t, (u3 + u4 - u1 - u2) * (1 / 6) + u5)
    }
}

/// Runs `body(first, count)` over T tiles in blocks of `WinogradTiling.block`.
@inline(__always)
func forEachBlock(_ T: Int, _ body: (Int, Int) -> Void) {
    var t0 = 0
    while t0 < T {
        let nb = min(WinogradTiling.block, T - t0)
        body(t0, nb)
        t0 += nb
    }
}

/// dst[(size·r + l)][b] = plane[offsets[b] + r·rowStride + l]: the size×size tiles of a block, tile-innermost.
@inline(__always)
func gatherTiles(
    _ size: Int, from plane: UnsafePointer<Float>, rowStride: Int, offsets: UnsafePointer<Int>,
    count nb: Int, into dst: UnsafeMutablePointer<Float>
) {
    let B = WinogradTiling.block
    for r in 0..<size {
        for l in 0..<size {
            let src = plane + r * rowStride + l, d = dst + (size * r + l) * B
            for b in 0..<nb { d[b] = src[offsets[b]] }
        }
    }
}

/// Zeroes the 36 runs of `count` floats at `start` + ξ·`pointStride` that a transform has just read.
/// The GEMMs that fill those buffers then accumulate onto zeros (beta = 1) instead of having
/// OpenBLAS zero them first (beta = 0): that was a separate pass over a buffer that had long left
/// the cache, while these lines are still in L1.
/// (Runs are at most one block of 64 floats: inline stores, not a memset call per run.)
@inline(__always)
func clearRuns(_ start: UnsafeMutablePointer<Float>, _ pointStride: Int, _ count: Int) {
    let vectors = count / 8 * 8
    for xi in 0..<WinogradTiling.points {
        let run = start + xi * pointStride, raw = UnsafeMutableRawPointer(run)
        var i = 0
        while i < vectors { raw.storeBytes(of: SIMD8<Float>(), toByteOffset: i * 4, as: SIMD8<Float>.self); i += 8 }
        while i < count { run[i] = 0; i += 1 }
    }
}
