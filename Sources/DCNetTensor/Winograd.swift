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

    /// Output planes of whole tiles: 4·tileRows × 4·tileColumns (the image itself when H and W are
    /// multiples of 4).
    public var alignedHeight: Int { 4 * tileRows }
    public var alignedWidth: Int { 4 * tileColumns }
    public var isAligned: Bool { alignedHeight == height && alignedWidth == width }
    /// Input planes with a zero border wide enough for every 6×6 input tile: 4·tileRows+2 rows of
    /// 4·tileColumns+2 (the padding-1 image plus the alignment).
    public var paddedHeight: Int { alignedHeight + 2 }
    public var paddedWidth: Int { alignedWidth + 2 }

    /// Offsets of the first pixel of every tile of `images` images (channel 0), in planes of
    /// `rowStride` × rows with `channels` planes per image: tile t of image n, tile row ty and
    /// column tx starts at (n·channels·planeSize) + 4·ty·rowStride + 4·tx. Computed once, so the
    /// transforms need no division per tile.
    public func tileOffsets(
        images: Int, channels: Int, planeSize: Int, rowStride: Int,
        into offsets: UnsafeMutablePointer<Int>
    ) {
        var t = 0
        for n in 0..<images {
            for ty in 0..<tileRows {
                for tx in 0..<tileColumns {
                    offsets[t] = n * channels * planeSize + 4 * ty * rowStride + 4 * tx
                    t += 1
                }
            }
        }
    }
}

/// Copies `planes` planes of `height` × `width` between buffers with their own row and plane
/// strides (into and out of the padded and aligned planes of the Winograd transforms).
public func copyPlanes(
    _ src: UnsafePointer<Float>, rowStride sr: Int, planeStride sp: Int,
    into dst: UnsafeMutablePointer<Float>, rowStride dr: Int, planeStride dp: Int,
    planes: Int, height: Int, width: Int
) {
    for p in 0..<planes {
        for y in 0..<height {
            (dst + p * dp + y * dr).update(from: src + p * sp + y * sr, count: width)
        }
    }
}

public enum Winograd {
    /// U[ξ][k][c] = (G g Gᵀ)[ξ] for filters [K][C][3][3].
    public static func transformFilters(
        _ filters: UnsafePointer<Float>, outChannels K: Int, inChannels C: Int,
        into U: UnsafeMutablePointer<Float>
    ) {
        let KC = K * C, B = WinogradTiling.block
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 27 * B) { buffer in
            let g = buffer.baseAddress!, half = g + 9 * B
            var kc0 = 0
            while kc0 < KC {
                let nb = min(B, KC - kc0)
                for i in 0..<9 {
                    let src = filters + kc0 * 9 + i, dst = g + i * B
                    for b in 0..<nb { dst[b] = src[9 * b] }
                }
                // half[i][s] = Σ_r G[i][r] g[r][s]; U[i][j] = Σ_s G[j][s] half[i][s]
                for s in 0..<3 { filterTransform(g + s * B, 3 * B, half + s * B, 3 * B, nb) }
                for i in 0..<6 { filterTransform(half + 3 * i * B, B, U + 6 * i * KC + kc0, KC, nb) }
                kc0 += nb
            }
        }
    }

    /// dg = Gᵀ dU G: the filter gradient [K][C][3][3] from dL/dU [36][K][C] (the adjoint of
    /// `transformFilters`).
    public static func filterGradient(
        _ dU: UnsafePointer<Float>, outChannels K: Int, inChannels C: Int,
        into dg: UnsafeMutablePointer<Float>
    ) {
        let KC = K * C, B = WinogradTiling.block
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 27 * B) { buffer in
            let g = buffer.baseAddress!, half = g + 9 * B
            var kc0 = 0
            while kc0 < KC {
                let nb = min(B, KC - kc0)
                // half[i][b] = Σ_j dU[i][j] G[j][b]; dg[a][b] = Σ_i G[i][a] half[i][b]
                for i in 0..<6 { filterTransformAdjoint(dU + 6 * i * KC + kc0, KC, half + 3 * i * B, B, nb) }
                for b in 0..<3 { filterTransformAdjoint(half + b * B, 3 * B, g + b * B, 3 * B, nb) }
                for i in 0..<9 {
                    let src = g + i * B, dst = dg + kc0 * 9 + i
                    for b in 0..<nb { dst[9 * b] = src[b] }
                }
                kc0 += nb
            }
        }
    }

    /// V[ξ][c][t] = (Bᵀ d B)[ξ] for the 6×6 input tile d of each of T tiles, read from zero-bordered
    /// planes (`planeStride`, `rowStride`) at `offsets[t]` + c·planeStride.
    public static func transformInput(
        _ padded: UnsafePointer<Float>, channels C: Int, planeStride: Int,
        rowStride: Int, tiles T: Int, offsets: UnsafePointer<Int>,
        into V: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>
    ) {
        let B = WinogradTiling.block, D = workspace, E = workspace + 36 * B
        forEachBlock(T) { t0, nb in
            for c in 0..<C {
                gatherTiles(
                    6, from: padded + c * planeStride, rowStride: rowStride, offsets: offsets + t0, count: nb, into: D)
                for l in 0..<6 { inputTransform(D + l * B, 6 * B, E + l * B, 6 * B, nb) }
                let out = V + c * T + t0, pointStride = C * T
                for i in 0..<6 { inputTransform(E + 6 * i * B, B, out + 6 * i * pointStride, pointStride, nb) }
            }
        }
    }

    /// The adjoint of `transformInput`: adds dL/d(padded planes) from dL/dV [36][C][T] (overlapping
    /// tiles add up; the caller zeroes the planes first).
    ///
    /// With `clearing`, dV is zeroed as it is read (see `clearRuns`).
    public static func transformInputAdjoint(
        _ dV: UnsafeMutablePointer<Float>, channels C: Int, planeStride: Int,
        rowStride: Int, tiles T: Int, offsets: UnsafePointer<Int>,
        into padded: UnsafeMutablePointer<Float>,
        workspace: UnsafeMutablePointer<Float>, clearing: Bool = false
    ) {
        let B = WinogradTiling.block, D = workspace, E = workspace + 36 * B
        forEachBlock(T) { t0, nb in
            let offs = offsets + t0
            for c in 0..<C {
                let src = dV + c * T + t0, pointStride = C * T
                for i in 0..<6 { inputTransformAdjoint(src + 6 * i * pointStride, pointStride, E + 6 * i * B, B, nb) }
                if clearing { clearRuns(src, pointStride, nb) }
                for l in 0..<6 { inputTransformAdjoint(E + l * B, 6 * B, D + l * B, 6 * B, nb) }
                let plane = padded + c * planeStride
                // Tiles of one block overlap each other, so the scatter-add stays one tile at a time.
                for b in 0..<nb {
                    let tile = plane + offs[b], s = D + b
                    for r in 0..<6 {
                        let row = tile + r * rowStride, sr = s + 6 * r * B
                        for l in 0..<6 { row[l] += sr[l * B] }
                    }
                }
            }
        }
    }

    /// Aᵀ M A for each of T tiles from M [36][K][T], written as 4×4 blocks into planes
    /// (`planeStride`, `rowStride`) at `offsets[t]` + k·planeStride.
    ///
    /// With `clearing`, M is zeroed as it is read (see `clearRuns`).
    public static func transformOutput(
        _ M: UnsafeMutablePointer<Float>, channels K: Int, planeStride: Int, rowStride: Int,
        tiles T: Int, offsets: UnsafePointer<Int>,
        into planes: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>,
        clearing: Bool = false
    ) {
        let B = WinogradTiling.block, Z = workspace, Y = workspace + 36 * B
        forEachBlock(T) { t0, nb in
            let offs = offsets + t0
            for k in 0..<K {
                let src = M + k * T + t0, pointStride = K * T
                // Z[a][l] = Σ_r Aᵀ[a][r] M[r][l]; Y[a][b] = Σ_l Aᵀ[b][l] Z[a][l]
                for l in 0..<6 { outputTransform(src + l * pointStride, 6 * pointStride, Z + l * B, 6 * B, nb) }
                if clearing { clearRuns(src, pointStride, nb) }
                for a in 0..<4 { outputTransform(Z + 6 * a * B, B, Y + 4 * a * B, B, nb) }
                let plane = planes + k * planeStride
                for a in 0..<4 {
                    for c in 0..<4 {
                        let dst = plane + a * rowStride + c, s = Y + (4 * a + c) * B
                        for b in 0..<nb { dst[offs[b]] = s[b] }
                    }
                }
            }
        }
    }

    /// The adjoint of `transformOutput`: dL/dM [36][K][T] = A dY Aᵀ per tile, from the 4×4 blocks of
    /// dL/d(planes).
    public static func transformOutputAdjoint(
        _ planes: UnsafePointer<Float>, channels K: Int, planeStride: Int,
        rowStride: Int, tiles T: Int, offsets: UnsafePointer<Int>,
        into dM: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>
    ) {
        let B = WinogradTiling.block, Y = workspace, Z = workspace + 36 * B
        forEachBlock(T) { t0, nb in
            for k in 0..<K {
                gatherTiles(
                    4, from: planes + k * planeStride, rowStride: rowStride, offsets: offsets + t0, count: nb, into: Y)
                // Z[r][c] = Σ_a Aᵀ[a][r] Y[a][c]; dM[r][l] = Σ_c Aᵀ[c][l] Z[r][c]
                for c in 0..<4 { outputTransformAdjoint(Y + c * B, 4 * B, Z + c * B, 4 * B, nb) }
                let out = dM + k * T + t0, pointStride = K * T
                for r in 0..<6 { outputTransformAdjoint(Z + 4 * r * B, B, out + 6 * r * pointStride, pointStride, nb) }
            }
        }
    }
}
