import BLAS
import DCNetTensor

/// The im2col + GEMM machinery shared by the baseline and the decoupled convolutions (as in Caffe),
/// one image at a time: per-image GEMMs keep the packed columns of one image in cache, which on the
/// 32×32×64 layer ran near sgemm peak while whole-batch GEMMs fell to ~63%.
/// Filters are [K × C·R·S] row-major, images C×H×W, outputs K×(OH·OW).
struct ConvolutionGEMM {
    let geometry: ConvGeometry
    let outChannels: Int
    /// Packed columns of one image [C·R·S × P] (unused for 1×1 stride-1 convolutions).
    let columns: UnsafeMutablePointer<Float>
    /// Column gradients of one image.
    let columnGradient: UnsafeMutablePointer<Float>

    init(geometry: ConvGeometry, outChannels: Int, arena: Arena) {
        self.geometry = geometry
        self.outChannels = outChannels
        let size = geometry.isIdentityPacking ? 1 : geometry.patchSize * geometry.positions
        columns = arena.floats(size)
        columnGradient = arena.floats(size)
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
        BLAS.sgemm(.none, .none, m: outChannels, n: positions, k: patchSize,
                   a: filters, b: columns, beta: 0, c: out)
    }

    /// filterGradient[K × CRS] (+)= outGradient[K × P] · columns[CRS × P]ᵀ
    func accumulateFilterGradient(outGradient: UnsafePointer<Float>, columns: UnsafePointer<Float>,
                                  filterGradient: UnsafeMutablePointer<Float>, overwrite: Bool) {
        BLAS.sgemm(.none, .transpose, m: outChannels, n: patchSize, k: positions,
                   a: outGradient, b: columns, beta: overwrite ? 0 : 1, c: filterGradient)
    }

    /// inputGradient[C×H×W] = col2im(filters[K × CRS]ᵀ · outGradient[K × P])
    func inputGradient(filters: UnsafePointer<Float>, outGradient: UnsafePointer<Float>,
                       image: UnsafeMutablePointer<Float>) {
        if geometry.isIdentityPacking {
            BLAS.sgemm(.transpose, .none, m: patchSize, n: positions, k: outChannels,
                       a: filters, b: outGradient, beta: 0, c: image)
            return
        }
        BLAS.sgemm(.transpose, .none, m: patchSize, n: positions, k: outChannels,
                   a: filters, b: outGradient, beta: 0, c: columnGradient)
        col2im(geometry, columns: columnGradient, image: image)
    }
}
