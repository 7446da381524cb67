import BLAS
import DCNetTensor

/// The im2col + GEMM machinery shared by the baseline and the decoupled convolutions (as in Caffe),
/// one image at a time: per-image GEMMs keep the packed columns of one image in cache, which on the
/// 32×32×64 layer ran near sgemm peak while whole-batch GEMMs fell to ~63%.
/// Filters are [K × C·R·S] row-major, images C×H×W, outputs K×(OH·OW).
struct ConvolutionGEMM {
    let geometry: ConvGeometry
    let outChannels: Int
    /// Packed columns of one image [C·R·S × P] (unused for 1×1 stride-1 convolutions); in backward
    /// also the packed output gradient [K·R·S × H·W] when `adjoint` is set.
    let columns: UnsafeMutablePointer<Float>
    /// Column gradients of one image, for the col2im path.
    let columnGradient: UnsafeMutablePointer<Float>?
    /// dL/d(flipped filters) [K·R·S × C], for the adjoint path.
    let flippedGradient: UnsafeMutablePointer<Float>?
    /// Stride-1 convolutions get their input gradient as a convolution of the output gradient (see
    /// `backward`), which skips zeroing and scatter-adding a columns-sized buffer (9× the image).
    let adjoint: ConvGeometry?
    /// Flipped, transposed filters [C × K·R·S] for the adjoint path.
    let adjointFilters: UnsafeMutablePointer<Float>?
    let gemm: GEMM
    /// bf16 copies of the operands read by more than one product (nil in fp32): the filters (one
    /// rounding per batch, not per image), the flipped filters, the columns (read by both backward
    /// products of the adjoint path) and one image's output gradient (both products otherwise).
    let filterWords: UnsafeMutablePointer<UInt16>?
    let adjointFilterWords: UnsafeMutablePointer<UInt16>?
    let columnWords: UnsafeMutablePointer<UInt16>?
    let gradientWords: UnsafeMutablePointer<UInt16>?

    init(geometry: ConvGeometry, outChannels: Int, gemm: GEMM = .fp32, arena: Arena) {
        self.geometry = geometry
        self.outChannels = outChannels
        self.gemm = gemm
        adjoint = geometry.inputGradientGeometry(outChannels: outChannels)
        let packed = geometry.isIdentityPacking ? 1 : geometry.patchSize * geometry.positions
        let columnCount: Int
        if let a = adjoint {
            columnCount = max(packed, a.patchSize * a.positions)
            columns = arena.floats(columnCount)
            columnGradient = nil
            adjointFilters = arena.floats(outChannels * geometry.patchSize)
            flippedGradient = arena.floats(outChannels * geometry.patchSize)
        } else {
            columnCount = packed
            columns = arena.floats(packed)
            columnGradient = geometry.isIdentityPacking ? nil : arena.floats(packed)
            adjointFilters = nil
            flippedGradient = nil
        }
        let bf16 = gemm.precision.roundsOperands
        filterWords = bf16 ? arena.halfWords(outChannels * geometry.patchSize) : nil
        adjointFilterWords = bf16 && adjoint != nil ? arena.halfWords(outChannels * geometry.patchSize) : nil
        columnWords = bf16 ? arena.halfWords(columnCount) : nil
        gradientWords = bf16 ? arena.halfWords(outChannels * geometry.positions) : nil
    }

    /// The filters as the forward products' operand (rounded to bf16 once per batch in bf16).
    func filterOperand(_ filters: UnsafePointer<Float>) -> GEMMOperand {
        gemm.operand(filters, count: outChannels * patchSize, words: filterWords)
    }

    var patchSize: Int { geometry.patchSize }
    var positions: Int { geometry.positions }

    /// The column matrix of `image` (packing it unless the convolution is 1×1 stride 1).
    func pack(_ image: UnsafePointer<Float>) -> UnsafePointer<Float> {
        if geometry.isIdentityPacking { return image }
        im2col(geometry, image: image, columns: columns)
        return UnsafePointer(columns)
    }

    /// out[K × P] = filters[K × CRS] · columns[CRS × P]
    func forward(filters: GEMMOperand, columns: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        gemm(
            .none, .none, m: outChannels, n: positions, k: patchSize,
            a: filters, b: .fp32(columns), beta: 0, c: out)
    }

    /// The backward GEMMs of a batch, for each one given: filterGradient = Σ_n dL/dfilters and
    /// inputGradient = dL/dx per image. `afterImage(n)` runs once image n's input gradient is written.
    ///
    /// Stride-1 layers that need the input gradient pack the output gradient once per image
    /// (columns A[(k, r', s'), q] = dy[k, q + (r', s') - (R-1-p)] over input positions q) and
    /// use A for both products: dx = flipped(W) · A, and, since A[(k, R-1-r, S-1-s), q] =
    /// dy[k, q - (r, s) + p], dW[k, c, r, s] = Σ_q x[c, q] · A[(k, R-1-r, S-1-s), q], a GEMM against
    /// the raw image. That is one im2col per image instead of two plus a col2im.
    func backward(
        samples N: Int, filters: UnsafePointer<Float>, input: Tensor, outGradient: Tensor,
        filterGradient: UnsafeMutablePointer<Float>?, inputGradient: Tensor?,
        afterImage: (Int) -> Void = { _ in }
    ) {
        if let dx = inputGradient, let a = adjoint, let flipped = adjointFilters, let flippedGradient {
            let K = outChannels, C = geometry.channels, RS = geometry.kernel * geometry.kernel
            flip(filters, into: flipped, rows: K, columns: C, taps: RS)
            let flippedOperand = gemm.operand(flipped, count: C * K * RS, words: adjointFilterWords)
            for n in 0..<N {
                im2col(a, image: outGradient.sample(n), columns: columns)
                let columnOperand = gemm.operand(columns, count: a.patchSize * a.positions, words: columnWords)
                if filterGradient != nil {
                    gemm(
                        .none, .transpose, m: a.patchSize, n: C, k: a.positions,
                        a: columnOperand, b: .fp32(input.sample(n)), beta: n == 0 ? 0 : 1, c: flippedGradient)
                }
                gemm(
                    .none, .none, m: C, n: a.positions, k: a.patchSize,
                    a: flippedOperand, b: columnOperand, beta: 0, c: dx.sample(n))
                afterImage(n)
            }
            // flippedGradient is [(k, r', s') × c]; filterGradient[k, c, r, s] = its [(k, R-1-r, S-1-s), c].
            guard let filterGradient else { return }
            for k in 0..<K {
                for c in 0..<C {
                    let dst = filterGradient + (k * C + c) * RS, src = flippedGradient + k * RS * C + c
                    for i in 0..<RS { dst[i] = src[(RS - 1 - i) * C] }
                }
            }
            return
        }
        let filterOperand = inputGradient != nil ? filterOperand(filters) : .fp32(filters)
        for n in 0..<N {
            // dy of this image is read by both products: rounded once when both run.
            let dy =
                filterGradient != nil && inputGradient != nil
                ? gemm.operand(outGradient.sample(n), count: outChannels * positions, words: gradientWords)
                : .fp32(outGradient.sample(n))
            if let filterGradient {
                gemm(
                    .none, .transpose, m: outChannels, n: patchSize, k: positions,
                    a: dy, b: .fp32(pack(input.sample(n))), beta: n == 0 ? 0 : 1, c: filterGradient)
            }
            guard let dx = inputGradient else { continue }
            let image = dx.sample(n)
            if geometry.isIdentityPacking {
                gemm(
                    .transpose, .none, m: patchSize, n: positions, k: outChannels,
                    a: filterOperand, b: dy, beta: 0, c: image)
            } else {
                let cg = columnGradient!
                gemm(
                    .transpose, .none, m: patchSize, n: positions, k: outChannels,
                    a: filterOperand, b: dy, beta: 0, c: cg)
                col2im(geometry, columns: cg, image: image)
            }
            afterImage(n)
        }
    }

    /// flipped[c, (k, r, s)] = filters[k, (c, R-1-r, S-1-s)]: the filters of the adjoint convolution.
    private func flip(
        _ filters: UnsafePointer<Float>, into flipped: UnsafeMutablePointer<Float>,
        rows K: Int, columns C: Int, taps RS: Int
    ) {
        for k in 0..<K {
            for c in 0..<C {
                let src = filters + (k * C + c) * RS, dst = flipped + (c * K + k) * RS
                for i in 0..<RS { dst[i] = src[RS - 1 - i] }
            }
        }
    }
}
