import BLAS
import DCNetTensor

/// The Winograd F(4×4, 3×3) convolution of a batch (see `Winograd` for the math): 36 GEMMs per
/// chunk of images over the transformed tiles, 4× fewer multiply-adds than im2col + GEMM.
///
/// Images are processed in chunks of about `targetTiles` tiles, so each chunk's 36 GEMMs are
/// K × C × ~512 (about as efficient in OpenBLAS as the im2col GEMMs) and its transformed tiles stay
/// in cache between the transform and the GEMMs. The transformed input of the whole batch is kept
/// from forward for the filter gradient in backward.
struct WinogradConvolution {
    static let targetTiles = 512

    let geometry: ConvGeometry
    let tiling: WinogradTiling
    let outChannels: Int
    let imagesPerChunk: Int
    /// U [36][K][C], computed in forward and reused by backward.
    let transformedFilters: UnsafeMutablePointer<Float>
    /// V of the whole batch: chunk after chunk, each [36][C][tiles of the chunk]. In bf16 only one
    /// chunk's (the GEMMs read `inputWords`).
    let transformedInput: UnsafeMutablePointer<Float>
    let gemm: GEMM
    /// bf16 (nil in fp32): U, rounded once per forward and read by the forward and input-gradient
    /// GEMMs; V of the whole batch, rounded once per chunk and read again by the filter-gradient
    /// GEMMs; dL/dM of one chunk, read by both backward GEMMs.
    let filterWords: UnsafeMutablePointer<UInt16>?
    let inputWords: UnsafeMutablePointer<UInt16>?
    let productWords: UnsafeMutablePointer<UInt16>?
    /// M (forward) and dL/dM (backward) of one chunk [36][K][tiles]. All zero between uses in
    /// forward: the output transform zeroes what it reads and backward zeroes it when done, so the
    /// GEMMs add onto it (beta = 1) without a zeroing pass of their own.
    let products: UnsafeMutablePointer<Float>
    /// dL/dV of one chunk [36][C][tiles]; all zero between uses likewise (the adjoint input
    /// transform zeroes what it reads).
    let inputProducts: UnsafeMutablePointer<Float>
    /// dL/dU [36][K][C].
    let filterProducts: UnsafeMutablePointer<Float>
    /// One chunk's images with a zero border (the border is zeroed once and never written), and
    /// their gradient.
    let paddedInput: UnsafeMutablePointer<Float>
    let paddedGradient: UnsafeMutablePointer<Float>
    /// Whole-tile output planes of one chunk when H or W is not a multiple of 4 (nil otherwise),
    /// forward and backward (the latter keeps a zero margin).
    let alignedOutput: UnsafeMutablePointer<Float>?
    let alignedGradient: UnsafeMutablePointer<Float>?
    /// Where every tile of a chunk starts in the padded input planes and in the output planes.
    let inputOffsets: UnsafeMutablePointer<Int>
    let outputOffsets: UnsafeMutablePointer<Int>
    let workspace: UnsafeMutablePointer<Float>

    init(geometry: ConvGeometry, outChannels: Int, batch: Int, gemm: GEMM = .fp32, arena: Arena) {
        guard let tiling = WinogradTiling(geometry) else {
            fatalError("Winograd F(4×4, 3×3) does not apply to \(geometry)")
        }
        self.geometry = geometry; self.tiling = tiling; self.outChannels = outChannels; self.gemm = gemm
        let K = outChannels, C = geometry.channels, tiles = tiling.tilesPerImage
        imagesPerChunk = max(1, min(batch, Self.targetTiles / tiles))
        let chunkTiles = imagesPerChunk * tiles, points = WinogradTiling.points
        let bf16 = gemm.precision.roundsOperands
        transformedFilters = arena.floats(points * K * C)
        transformedInput = arena.floats(points * C * (bf16 ? chunkTiles : batch * tiles))
        filterWords = bf16 ? arena.halfWords(points * K * C) : nil
        inputWords = bf16 ? arena.halfWords(points * C * batch * tiles) : nil
        productWords = bf16 ? arena.halfWords(points * K * chunkTiles) : nil
        products = arena.floats(points * K * chunkTiles)
        inputProducts = arena.floats(points * C * chunkTiles)
        filterProducts = arena.floats(points * K * C)
        let paddedCount = imagesPerChunk * C * tiling.paddedHeight * tiling.paddedWidth
        paddedInput = arena.floats(paddedCount); paddedGradient = arena.floats(paddedCount)
        paddedInput.update(repeating: 0, count: paddedCount)
        let alignedPlane = tiling.alignedHeight * tiling.alignedWidth
        if tiling.isAligned {
            alignedOutput = nil; alignedGradient = nil
        } else {
            alignedOutput = arena.floats(imagesPerChunk * K * alignedPlane)
            alignedGradient = arena.floats(imagesPerChunk * K * alignedPlane)
            alignedGradient!.update(repeating: 0, count: imagesPerChunk * K * alignedPlane)
        }
        inputOffsets = arena.integers(chunkTiles); outputOffsets = arena.integers(chunkTiles)
        tiling.tileOffsets(
            images: imagesPerChunk, channels: C, planeSize: tiling.paddedHeight * tiling.paddedWidth,
            rowStride: tiling.paddedWidth, into: inputOffsets)
        tiling.tileOffsets(
            images: imagesPerChunk, channels: K, planeSize: alignedPlane,
            rowStride: tiling.alignedWidth, into: outputOffsets)
        workspace = arena.floats(WinogradTiling.workspaceCount)
    }

    /// The chunks of a batch of N images, by first image.
    private func chunks(_ N: Int) -> StrideTo<Int> { stride(from: 0, to: N, by: imagesPerChunk) }
    private func transformedInput(chunkAt first: Int) -> UnsafeMutablePointer<Float> {
        inputWords != nil
            ? transformedInput
            : transformedInput + WinogradTiling.points * geometry.channels * first * tiling.tilesPerImage
    }
    private func inputWords(chunkAt first: Int) -> UnsafeMutablePointer<UInt16>? {
        inputWords.map { $0 + WinogradTiling.points * geometry.channels * first * tiling.tilesPerImage }
    }
    private var chunkTiles: Int { imagesPerChunk * tiling.tilesPerImage }
    private var paddedPlane: Int { tiling.paddedHeight * tiling.paddedWidth }
    private var alignedPlane: Int { tiling.alignedHeight * tiling.alignedWidth }
    /// The first image pixel inside a padded plane.
    private var paddedInterior: Int { tiling.paddedWidth + 1 }

    /// out [N][K][H][W] = filters [K][C][3][3] ⋆ input; `afterImages` runs after each chunk's outputs.
    func forward(
        samples N: Int, filters: UnsafePointer<Float>, input: Tensor, output: Tensor,
        afterImages: (Range<Int>) -> Void
    ) {
        let K = outChannels, C = geometry.channels, H = geometry.height, W = geometry.width
        Winograd.transformFilters(filters, outChannels: K, inChannels: C, into: transformedFilters)
        let U = gemm.operand(transformedFilters, count: WinogradTiling.points * K * C, words: filterWords)
        for first in chunks(N) {
            let n = min(imagesPerChunk, N - first), T = n * tiling.tilesPerImage
            let V = transformedInput(chunkAt: first)
            copyPlanes(
                input.sample(first), rowStride: W, planeStride: H * W,
                into: paddedInput + paddedInterior, rowStride: tiling.paddedWidth, planeStride: paddedPlane,
                planes: n * C, height: H, width: W)
            Winograd.transformInput(
                paddedInput, channels: C, planeStride: paddedPlane, rowStride: tiling.paddedWidth,
                tiles: T, offsets: inputOffsets, into: V, workspace: workspace)
            let v = gemm.operand(V, count: WinogradTiling.points * C * T, words: inputWords(chunkAt: first))
            gemm.batched(
                count: WinogradTiling.points, .none, .none, m: K, n: T, k: C, a: U, strideA: K * C, b: v,
                strideB: C * T, beta: 1, c: products, strideC: K * T)
            let out = alignedOutput ?? output.sample(first)
            Winograd.transformOutput(
                products, channels: K, planeStride: alignedPlane, rowStride: tiling.alignedWidth,
                tiles: T, offsets: outputOffsets, into: out, workspace: workspace, clearing: true)
            if let aligned = alignedOutput {
                copyPlanes(
                    aligned, rowStride: tiling.alignedWidth, planeStride: alignedPlane,
                    into: output.sample(first), rowStride: W, planeStride: H * W, planes: n * K, height: H, width: W)
            }
            afterImages(first..<(first + n))
        }
    }

    /// The backward of the last `forward`: for each one given, filterGradient = dL/dfilters over the
    /// batch and inputGradient = dL/dx. `afterImage(n)` runs once image n's input gradient is written.
    func backward(
        samples N: Int, outGradient: Tensor, filterGradient: UnsafeMutablePointer<Float>?,
        inputGradient: Tensor?, afterImage: (Int) -> Void
    ) {
        let K = outChannels, C = geometry.channels, H = geometry.height, W = geometry.width
        if N == 0 { filterProducts.update(repeating: 0, count: WinogradTiling.points * K * C) }
        for first in chunks(N) {
            let n = min(imagesPerChunk, N - first), T = n * tiling.tilesPerImage
            let V: GEMMOperand = inputWords(chunkAt: first).map { .bf16($0) } ?? .fp32(transformedInput(chunkAt: first))
            if let aligned = alignedGradient {
                copyPlanes(
                    outGradient.sample(first), rowStride: W, planeStride: H * W,
                    into: aligned, rowStride: tiling.alignedWidth, planeStride: alignedPlane,
                    planes: n * K, height: H, width: W)
            }
            Winograd.transformOutputAdjoint(
                alignedGradient ?? outGradient.sample(first), channels: K,
                planeStride: alignedPlane, rowStride: tiling.alignedWidth, tiles: T,
                offsets: outputOffsets, into: products, workspace: workspace)
            let U: GEMMOperand = filterWords.map { .bf16($0) } ?? .fp32(transformedFilters)
            let M = gemm.operand(products, count: WinogradTiling.points * K * T, words: productWords)
            if gemm.precision == .bf16 {
                // One batched matmul per product instead of 36 calls (fp32 keeps the interleaved loop).
                if filterGradient != nil {
                    gemm.batched(
                        count: WinogradTiling.points, .none, .transpose, m: K, n: C, k: T, a: M, strideA: K * T,
                        b: V, strideB: C * T, beta: first == 0 ? 0 : 1, c: filterProducts, strideC: K * C)
                }
                if inputGradient != nil {
                    gemm.batched(
                        count: WinogradTiling.points, .transpose, .none, m: C, n: T, k: K, a: U, strideA: K * C,
                        b: M, strideB: K * T, beta: 1, c: inputProducts, strideC: C * T)
                }
            }
            for xi in 0..<WinogradTiling.points where gemm.precision != .bf16 {
                let dM = M.offset(by: xi * K * T)
                if filterGradient != nil {
                    gemm(
                        .none, .transpose, m: K, n: C, k: T, a: dM, b: V.offset(by: xi * C * T),
                        beta: first == 0 ? 0 : 1, c: filterProducts + xi * K * C)
                }
                if inputGradient != nil {
                    gemm(
                        .transpose, .none, m: C, n: T, k: K, a: U.offset(by: xi * K * C),
                        b: dM, beta: 1, c: inputProducts + xi * C * T)
                }
            }
            if let dx = inputGradient {
                paddedGradient.update(repeating: 0, count: n * C * paddedPlane)
                Winograd.transformInputAdjoint(
                    inputProducts, channels: C, planeStride: paddedPlane,
                    rowStride: tiling.paddedWidth, tiles: T, offsets: inputOffsets,
                    into: paddedGradient, workspace: workspace, clearing: true)
                copyPlanes(
                    paddedGradient + paddedInterior, rowStride: tiling.paddedWidth, planeStride: paddedPlane,
                    into: dx.sample(first), rowStride: W, planeStride: H * W, planes: n * C, height: H, width: W)
                for i in first..<(first + n) { afterImage(i) }
            }
        }
        if let filterGradient {
            Winograd.filterGradient(filterProducts, outChannels: K, inChannels: C, into: filterGradient)
        }
        products.update(repeating: 0, count: WinogradTiling.points * K * chunkTiles)
    }
}
