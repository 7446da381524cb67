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

    init(geometry: ConvGeometry, outChannels: Int, arena: Arena) {
        self.geometry = geometry
        self.outChannels = outChannels
        adjoint = geometry.inputGradientGeometry(outChannels: outChannels)
        let packed = geometry.isIdentityPacking ? 1 : geometry.patchSize * geometry.positions
        if let a = adjoint {
            columns = arena.floats(max(packed, a.patchSize * a.positions))
            columnGradient = nil
            adjointFilters = arena.floats(outChannels * geometry.patchSize)
            flippedGradient = arena.floats(outChannels * geometry.patchSize)
        } else {
            columns = arena.floats(packed)
            columnGradient = geometry.isIdentityPacking ? nil : arena.floats(packed)
            adjointFilters = nil
            flippedGradient = nil
        }
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
    func forward(filters: UnsafePointer<Float>, columns: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        BLAS.sgemm(
            .none, .none, m: outChannels, n: positions, k: patchSize,
            a: filters, b: columns, beta: 0, c: out)
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
            for n in 0..<N {
                im2col(a, image: outGradient.sample(n), columns: columns)
                if filterGradient != nil {
                    BLAS.sgemm(
                        .none, .transpose, m: a.patchSize, n: C, k: a.positions,
                        a: columns, b: input.sample(n), beta: n == 0 ? 0 : 1, c: flippedGradient)
                }
                BLAS.sgemm(
                    .none, .none, m: C, n: a.positions, k: a.patchSize,
                    a: flipped, b: columns, beta: 0, c: dx.sample(n))
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
        for n in 0..<N {
            if let filterGradient {
                BLAS.sgemm(
                    .none, .transpose, m: outChannels, n: patchSize, k: positions,
                    a: outGradient.sample(n), b: pack(input.sample(n)), beta: n == 0 ? 0 : 1, c: filterGradient)
            }
            guard let dx = inputGradient else { continue }
            let image = dx.sample(n)
            if geometry.isIdentityPacking {
                BLAS.sgemm(
                    .transpose, .none, m: patchSize, n: positions, k: outChannels,
                    a: filters, b: outGradient.sample(n), beta: 0, c: image)
            } else {
                let cg = columnGradient!
                BLAS.sgemm(
                    .transpose, .none, m: patchSize, n: positions, k: outChannels,
                    a: filters, b: outGradient.sample(n), beta: 0, c: cg)
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
