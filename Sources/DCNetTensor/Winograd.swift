/// Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
/// Neural Networks", 2016) for 3×3, stride-1, padding-1 convolutions.
///
/// A 4×4 output tile of one (output channel k, input channel c) pair is
/// Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A for the 3×3 filter g and the 6×6 input tile d around it. Summed
/// over c, the 36 element-wise products become 36 independent GEMMs
/// M_ξ[K × T] = U_ξ[K × C] · V_ξ[C × T] over all T tiles, with U = G g Gᵀ and V = Bᵀ d B:
/// 36 multiply-adds per (k, c, tile) instead of the 144 of a direct (im2col) convolution.
/// Backward is the exact adjoint of those linear maps: dV_ξ = U_ξᵀ dM_ξ, dU_ξ = dM_ξ V_ξᵀ, with
/// dM = A dY Aᵀ, dg = Gᵀ dU G and dd = B dV Bᵀ.
///
/// The transforms work on blocks of tiles laid out tile-innermost ([element][tile]), so every
/// arithmetic loop runs over contiguous tiles and vectorises; only the gathers from and scatters
/// into the image are strided.
///
/// Layouts: U [36][K][C]; V [36][C][T]; M [36][K][T] with ξ = 6·row + column of the 6×6 tile and
/// tiles numbered image-major, then tile row, then tile column.
public struct WinogradTiling: Hashable, Sendable, CustomStringConvertible {
    public static let outputTile = 4
    public static let inputTile = 6
    /// Number of transformed elements per tile (the number of GEMMs).
    public static let points = 36
    /// Tiles per block in the transforms: the block's workspace (2 × 36 × 64 floats) stays in L1.
    public static let block = 64
    /// Floats of workspace every transform needs.
    public static let workspaceCount = 2 * points * block

    public let height: Int, width: Int
    public let tileRows: Int, tileColumns: Int

    /// A tiling for `geometry`, or nil when Winograd F(4×4, 3×3) does not apply to it.
    public init?(_ geometry: ConvGeometry) {
        guard Self.supports(geometry) else { return nil }
        height = geometry.height; width = geometry.width
        tileRows = (height + 3) / 4; tileColumns = (width + 3) / 4
    }

    /// 3×3 kernels, stride 1, padding 1 (output the size of the input).
    public static func supports(_ g: ConvGeometry) -> Bool {
        g.kernel == 3 && g.stride == 1 && g.padding == 1
    }

    public var tilesPerImage: Int { tileRows * tileColumns }
    public var description: String { "\(height)×\(width) in \(tileRows)×\(tileColumns) tiles" }

    /// Where tile `t` (numbered over a run of images) starts: its image and the top-left pixel of its
    /// 6×6 input tile (which is one pixel up and left of its 4×4 output tile).
    @inline(__always)
    func origin(_ t: Int) -> (image: Int, y: Int, x: Int) {
        let image = t / tilesPerImage, r = t - image * tilesPerImage
        let ty = r / tileColumns
        return (image, 4 * ty, 4 * (r - ty * tileColumns))
    }
}

// MARK: - One-dimensional transforms over a run of tiles
// Each reads element i of its input at src + i·srcStride and writes element j at dst + j·dstStride,
// for `count` contiguous tiles.

/// Bᵀ d: 6 → 6 (interpolation points 0, ±1, ±2, ∞).
@inline(__always)
private func inputTransform(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int) {
    for t in 0..<n {
        let d0 = s[t], d1 = s[ss + t], d2 = s[2 * ss + t], d3 = s[3 * ss + t], d4 = s[4 * ss + t], d5 = s[5 * ss + t]
        d[t] = 4 * d0 - 5 * d2 + d4
        d[ds + t] = d3 + d4 - 4 * (d1 + d2)
        d[2 * ds + t] = d4 - d3 + 4 * (d1 - d2)
        d[3 * ds + t] = d4 - d2 + 2 * (d3 - d1)
        d[4 * ds + t] = d4 - d2 - 2 * (d3 - d1)
        d[5 * ds + t] = 4 * d1 - 5 * d3 + d5
    }
}

/// B v, the adjoint of `inputTransform`: 6 → 6.
@inline(__always)
private func inputTransformAdjoint(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int) {
    for t in 0..<n {
        let v0 = s[t], v1 = s[ss + t], v2 = s[2 * ss + t], v3 = s[3 * ss + t], v4 = s[4 * ss + t], v5 = s[5 * ss + t]
        d[t] = 4 * v0
        d[ds + t] = 4 * (v2 - v1 + v5) + 2 * (v4 - v3)
        d[2 * ds + t] = -5 * v0 - 4 * (v1 + v2) - v3 - v4
        d[3 * ds + t] = v1 - v2 + 2 * (v3 - v4) - 5 * v5
        d[4 * ds + t] = v0 + v1 + v2 + v3 + v4
        d[5 * ds + t] = v5
    }
}

/// Aᵀ m: 6 → 4.
@inline(__always)
private func outputTransform(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int) {
    for t in 0..<n {
        let m0 = s[t], m1 = s[ss + t], m2 = s[2 * ss + t], m3 = s[3 * ss + t], m4 = s[4 * ss + t], m5 = s[5 * ss + t]
        let p12 = m1 + m2, d12 = m1 - m2, p34 = m3 + m4, d34 = m3 - m4
        d[t] = m0 + p12 + p34
        d[ds + t] = d12 + 2 * d34
        d[2 * ds + t] = p12 + 4 * p34
        d[3 * ds + t] = d12 + 8 * d34 + m5
    }
}

/// A y, the adjoint of `outputTransform`: 4 → 6.
@inline(__always)
private func outputTransformAdjoint(_ s: UnsafePointer<Float>, _ ss: Int, _ d: UnsafeMutablePointer<Float>, _ ds: Int, _ n: Int) {
    for t in 0..<n {
        let y0 = s[t], y1 = s[ss + t], y2 = s[2 * ss + t], y3 = s[3 * ss + t]
        let even = y0 + y2, odd = y1 + y3, even4 = y0 + 4 * y2, odd8 = 2 * y1 + 8 * y3
        d[t] = y0
        d[ds + t] = even + odd
        d[2 * ds + t] = even - odd
        d[3 * ds + t] = even4 + odd8
        d[4 * ds + t] = even4 - odd8
        d[5 * ds + t] = y3
    }
}

public enum Winograd {
    /// U[ξ][k][c] = (G g Gᵀ)[ξ] for filters [K][C][3][3].
    public static func transformFilters(_ filters: UnsafePointer<Float>, outChannels K: Int, inChannels C: Int,
                                        into U: UnsafeMutablePointer<Float>) {
        let KC = K * C
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 24) { buffer in
            // half[i][s] = Σ_r G[i][r] g[r][s]; row[j] = Σ_s G[j][s] half[i][s]
            let half = buffer.baseAddress!, row = half + 18
            for kc in 0..<KC {
                let g = filters + kc * 9
                for s in 0..<3 { filterTransform(g[s], g[3 + s], g[6 + s], into: half + s, stride: 3) }
                for i in 0..<6 {
                    filterTransform(half[3 * i], half[3 * i + 1], half[3 * i + 2], into: row, stride: 1)
                    for j in 0..<6 { U[(6 * i + j) * KC + kc] = row[j] }
                }
            }
        }
    }

    /// dg = Gᵀ dU G: the filter gradient [K][C][3][3] from dL/dU [36][K][C] (the adjoint of
    /// `transformFilters`).
    public static func filterGradient(_ dU: UnsafePointer<Float>, outChannels K: Int, inChannels C: Int,
                                      into dg: UnsafeMutablePointer<Float>) {
        let KC = K * C
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 18) { buffer in
            // half[i][b] = Σ_j dU[i][j] G[j][b]; dg[a][b] = Σ_i G[i][a] half[i][b]
            let half = buffer.baseAddress!
            for kc in 0..<KC {
                for i in 0..<6 {
                    let u = dU + 6 * i * KC + kc
                    filterTransformAdjoint(u[0], u[KC], u[2 * KC], u[3 * KC], u[4 * KC], u[5 * KC],
                                           into: half + 3 * i, stride: 1)
                }
                let out = dg + kc * 9
                for b in 0..<3 {
                    filterTransformAdjoint(half[b], half[3 + b], half[6 + b], half[9 + b], half[12 + b], half[15 + b],
                                           into: out + b, stride: 3)
                }
            }
        }
    }

    /// G g: 3 → 6.
    @inline(__always)
    private static func filterTransform(_ g0: Float, _ g1: Float, _ g2: Float,
                                        into u: UnsafeMutablePointer<Float>, stride: Int) {
        let a = g0 + g2
        u[0] = g0 / 4
        u[stride] = -(a + g1) / 6
        u[2 * stride] = -(a - g1) / 6
        let b = g0 / 24 + g2 / 6
        u[3 * stride] = b + g1 / 12
        u[4 * stride] = b - g1 / 12
        u[5 * stride] = g2
    }

    /// Gᵀ u, the adjoint of `filterTransform`: 6 → 3.
    @inline(__always)
    private static func filterTransformAdjoint(_ u0: Float, _ u1: Float, _ u2: Float, _ u3: Float, _ u4: Float,
                                               _ u5: Float, into g: UnsafeMutablePointer<Float>, stride: Int) {
        g[0] = u0 / 4 - (u1 + u2) / 6 + (u3 + u4) / 24
        g[stride] = (u2 - u1) / 6 + (u3 - u4) / 12
        g[2 * stride] = (u3 + u4 - u1 - u2) / 6 + u5
    }

    /// V[ξ][c][t] = (Bᵀ d B)[ξ] for every 6×6 input tile d of `count` images [count][C][H][W]
    /// (zero outside the image).
    public static func transformInput(_ images: UnsafePointer<Float>, count: Int, channels C: Int,
                                      tiling: WinogradTiling, into V: UnsafeMutablePointer<Float>,
                                      workspace: UnsafeMutablePointer<Float>) {
        let H = tiling.height, W = tiling.width, HW = H * W, T = count * tiling.tilesPerImage
        let B = WinogradTiling.block, D = workspace, E = workspace + 36 * B
        for c in 0..<C {
            var t0 = 0
            while t0 < T {
                let nb = min(B, T - t0)
                for b in 0..<nb {
                    let (n, y, x) = tiling.origin(t0 + b)
                    let plane = images + (n * C + c) * HW
                    let y0 = y - 1, x0 = x - 1
                    if y0 >= 0 && x0 >= 0 && y0 + 6 <= H && x0 + 6 <= W {
                        for r in 0..<6 {
                            let row = plane + (y0 + r) * W + x0, dst = D + 6 * r * B + b
                            for l in 0..<6 { dst[l * B] = row[l] }
                        }
                    } else {
                        for r in 0..<6 {
                            let iy = y0 + r, dst = D + 6 * r * B + b
                            if iy < 0 || iy >= H {
                                for l in 0..<6 { dst[l * B] = 0 }
                                continue
                            }
                            let row = plane + iy * W
                            for l in 0..<6 {
                                let ix = x0 + l
                                dst[l * B] = ix >= 0 && ix < W ? row[ix] : 0
                            }
                        }
                    }
                }
                for l in 0..<6 { inputTransform(D + l * B, 6 * B, E + l * B, 6 * B, nb) }
                let out = V + c * T + t0, pointStride = C * T
                for i in 0..<6 { inputTransform(E + 6 * i * B, B, out + 6 * i * pointStride, pointStride, nb) }
                t0 += nb
            }
        }
    }

    /// The adjoint of `transformInput`: writes (overwrites) dL/d(images) [count][C][H][W] from
    /// dL/dV [36][C][T], adding up the overlapping tiles.
    public static func transformInputAdjoint(_ dV: UnsafePointer<Float>, count: Int, channels C: Int,
                                             tiling: WinogradTiling, into images: UnsafeMutablePointer<Float>,
                                             workspace: UnsafeMutablePointer<Float>) {
        let H = tiling.height, W = tiling.width, HW = H * W, T = count * tiling.tilesPerImage
        let B = WinogradTiling.block, D = workspace, E = workspace + 36 * B
        images.update(repeating: 0, count: count * C * HW)
        for c in 0..<C {
            var t0 = 0
            while t0 < T {
                let nb = min(B, T - t0)
                let src = dV + c * T + t0, pointStride = C * T
                for i in 0..<6 { inputTransformAdjoint(src + 6 * i * pointStride, pointStride, E + 6 * i * B, B, nb) }
                for l in 0..<6 { inputTransformAdjoint(E + l * B, 6 * B, D + l * B, 6 * B, nb) }
                for b in 0..<nb {
                    let (n, y, x) = tiling.origin(t0 + b)
                    let plane = images + (n * C + c) * HW
                    let y0 = y - 1, x0 = x - 1
                    if y0 >= 0 && x0 >= 0 && y0 + 6 <= H && x0 + 6 <= W {
                        for r in 0..<6 {
                            let row = plane + (y0 + r) * W + x0, s = D + 6 * r * B + b
                            for l in 0..<6 { row[l] += s[l * B] }
                        }
                    } else {
                        for r in 0..<6 {
                            let iy = y0 + r
                            if iy < 0 || iy >= H { continue }
                            let row = plane + iy * W, s = D + 6 * r * B + b
                            for l in 0..<6 {
                                let ix = x0 + l
                                if ix >= 0 && ix < W { row[ix] += s[l * B] }
                            }
                        }
                    }
                }
                t0 += nb
            }
        }
    }

    /// images [count][K][H][W] = Aᵀ M A per tile, from M [36][K][T] (output pixels beyond the image
    /// edge, when H or W is not a multiple of 4, are dropped).
    public static func transformOutput(_ M: UnsafePointer<Float>, count: Int, channels K: Int,
                                       tiling: WinogradTiling, into images: UnsafeMutablePointer<Float>,
                                       workspace: UnsafeMutablePointer<Float>) {
        let H = tiling.height, W = tiling.width, HW = H * W, T = count * tiling.tilesPerImage
        let B = WinogradTiling.block, Z = workspace, Y = workspace + 36 * B
        for k in 0..<K {
            var t0 = 0
            while t0 < T {
                let nb = min(B, T - t0)
                let src = M + k * T + t0, pointStride = K * T
                // Z[a][l] = Σ_r Aᵀ[a][r] M[r][l]; Y[a][b] = Σ_l Aᵀ[b][l] Z[a][l]
                for l in 0..<6 { outputTransform(src + l * pointStride, 6 * pointStride, Z + l * B, 6 * B, nb) }
                for a in 0..<4 { outputTransform(Z + 6 * a * B, B, Y + 4 * a * B, B, nb) }
                for b in 0..<nb {
                    let (n, y, x) = tiling.origin(t0 + b)
                    let plane = images + (n * K + k) * HW
                    if y + 4 <= H && x + 4 <= W {
                        for a in 0..<4 {
                            let row = plane + (y + a) * W + x, s = Y + 4 * a * B + b
                            for c in 0..<4 { row[c] = s[c * B] }
                        }
                    } else {
                        for a in 0..<min(4, H - y) {
                            let row = plane + (y + a) * W + x, s = Y + 4 * a * B + b
                            for c in 0..<min(4, W - x) { row[c] = s[c * B] }
                        }
                    }
                }
                t0 += nb
            }
        }
    }

    /// The adjoint of `transformOutput`: dL/dM [36][K][T] = A dY Aᵀ per tile, from dL/d(images)
    /// [count][K][H][W].
    public static func transformOutputAdjoint(_ images: UnsafePointer<Float>, count: Int, channels K: Int,
                                              tiling: WinogradTiling, into dM: UnsafeMutablePointer<Float>,
                                              workspace: UnsafeMutablePointer<Float>) {
        let H = tiling.height, W = tiling.width, HW = H * W, T = count * tiling.tilesPerImage
        let B = WinogradTiling.block, Y = workspace, Z = workspace + 36 * B
        for k in 0..<K {
            var t0 = 0
            while t0 < T {
                let nb = min(B, T - t0)
                for b in 0..<nb {
                    let (n, y, x) = tiling.origin(t0 + b)
                    let plane = images + (n * K + k) * HW
                    if y + 4 <= H && x + 4 <= W {
                        for a in 0..<4 {
                            let row = plane + (y + a) * W + x, d = Y + 4 * a * B + b
                            for c in 0..<4 { d[c * B] = row[c] }
                        }
                    } else {
                        for a in 0..<4 {
                            let d = Y + 4 * a * B + b
                            for c in 0..<4 {
                                d[c * B] = y + a < H && x + c < W ? plane[(y + a) * W + x + c] : 0
                            }
                        }
                    }
                }
                // Z[r][c] = Σ_a Aᵀ[a][r] Y[a][c]; dM[r][l] = Σ_c Aᵀ[c][l] Z[r][c]
                for c in 0..<4 { outputTransformAdjoint(Y + c * B, 4 * B, Z + c * B, 4 * B, nb) }
                let out = dM + k * T + t0, pointStride = K * T
                for r in 0..<6 { outputTransformAdjoint(Z + 4 * r * B, B, out + 6 * r * pointStride, pointStride, nb) }
                t0 += nb
            }
        }
    }
}
