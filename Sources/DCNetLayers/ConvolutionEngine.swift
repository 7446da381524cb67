import BLAS
import DCNetTensor

/// How convolutions compute their inner products.
public enum ConvolutionAlgorithm: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Winograd F(4×4, 3×3) for 3×3 stride-1 padding-1 layers (4× fewer multiply-adds), im2col +
    /// GEMM for every other geometry.
    case winograd
    /// im2col + GEMM everywhere (Caffe's scheme): slower, with the rounding of a direct convolution.
    case gemm

    /// What layers, networks and runs use unless told otherwise (the faster algorithm).
    public static let standard: ConvolutionAlgorithm = .winograd

    public var description: String { rawValue }

    func usesWinograd(for g: ConvGeometry) -> Bool {
        self == .winograd && WinogradTiling.supports(g)
    }
}

/// The convolution of a batch by whichever algorithm a layer was built with: the one entry point
/// the baseline and decoupled convolutions call for their inner products.
struct ConvolutionEngine {
    private enum Implementation {
        case gemm(ConvolutionGEMM)
        case winograd(WinogradConvolution)
    }

    let geometry: ConvGeometry
    let outChannels: Int
    let precision: Precision
    private let implementation: Implementation

    init(
        geometry: ConvGeometry, outChannels: Int, batch: Int, algorithm: ConvolutionAlgorithm,
        precision: Precision = .fp32, arena: Arena
    ) {
        self.geometry = geometry; self.outChannels = outChannels; self.precision = precision
        let gemm = GEMM(precision)
        implementation =
            algorithm.usesWinograd(for: geometry)
            ? .winograd(
                WinogradConvolution(
                    geometry: geometry, outChannels: outChannels, batch: batch, gemm: gemm, arena: arena))
            : .gemm(ConvolutionGEMM(geometry: geometry, outChannels: outChannels, gemm: gemm, arena: arena))
    }

    var algorithm: ConvolutionAlgorithm {
        switch implementation {
        case .gemm: return .gemm
        case .winograd: return .winograd
        }
    }
    var positions: Int { geometry.positions }

    /// output[n] = filters [K × C·R·S] ⋆ input[n] for the first N images. `afterImages(range)` runs
    /// as soon as those images' outputs are written, while they are still in cache.
    func forward(
        samples N: Int, filters: UnsafePointer<Float>, input: Tensor, output: Tensor,
        afterImages: (Range<Int>) -> Void = { _ in }
    ) {
        switch implementation {
        case .winograd(let winograd):
            winograd.forward(samples: N, filters: filters, input: input, output: output, afterImages: afterImages)
        case .gemm(let gemm):
            let packedFilters = gemm.filterOperand(filters)
            for n in 0..<N {
                gemm.forward(filters: packedFilters, columns: gemm.pack(input.sample(n)), out: output.sample(n))
                afterImages(n..<(n + 1))
            }
        }
    }

    /// The backward of the last `forward` (same filters and input): writes, for each one given,
    /// filterGradient and inputGradient; `afterImage(n)` runs once image n's input gradient is complete.
    func backward(
        samples N: Int, filters: UnsafePointer<Float>, input: Tensor, outGradient: Tensor,
        filterGradient: UnsafeMutablePointer<Float>?, inputGradient: Tensor?,
        afterImage: (Int) -> Void = { _ in }
    ) {
        switch implementation {
        case .winograd(let winograd):
            winograd.backward(
                samples: N, outGradient: outGradient, filterGradient: filterGradient,
                inputGradient: inputGradient, afterImage: afterImage)
        case .gemm(let gemm):
            gemm.backward(
                samples: N, filters: filters, input: input, outGradient: outGradient,
                filterGradient: filterGradient, inputGradient: inputGradient, afterImage: afterImage)
        }
    }
}
