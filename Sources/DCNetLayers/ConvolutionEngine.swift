import BLAS
import DCNetTensor

/// How convolutions compute their inner products.
public enum ConvolutionAlgorithm: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Winograd F(4×4, 3×3) for 3×3 stride-1 padding-1 layers (4× fewer multiply-adds), im2col +
    /// GEMM for every other geometry.
    case winograd
    /// im2col + GEMM everywhere (Caffe's scheme): slower, with the rounding of a direct convolution.
    case gemm

    /// What layers built without an explicit algorithm use. The command line sets it once, before
    /// any network is built.
    nonisolated(unsafe) public static var `default`: ConvolutionAlgorithm = .winograd

    public var description: String { rawValue }

    func usesWinograd(for g: ConvGeometry) -> Bool {
        self == .winograd && WinogradTiling.supports(g)
    }
}

/// The convolution of a batch by whichever algorithm a layer was built with: the one entry point
/// the baseline and decoupled convolutions call for their inner products.
struct ConvolutionEngine {
    let geometry: ConvGeometry
    let outChannels: Int
    private let gemm: ConvolutionGEMM?
    private let winograd: WinogradConvolution?

    init(geometry: ConvGeometry, outChannels: Int, batch: Int, algorithm: ConvolutionAlgorithm, arena: Arena) {
        self.geometry = geometry; self.outChannels = outChannels
        if algorithm.usesWinograd(for: geometry) {
            winograd = WinogradConvolution(geometry: geometry, outChannels: outChannels, batch: batch, arena: arena)
            gemm = nil
        } else {
            gemm = ConvolutionGEMM(geometry: geometry, outChannels: outChannels, arena: arena)
            winograd = nil
        }
    }

    var algorithm: ConvolutionAlgorithm { winograd == nil ? .gemm : .winograd }
    var positions: Int { geometry.positions }

    /// output[n] = filters [K × C·R·S] ⋆ input[n] for the first N images.
    func forward(samples N: Int, filters: UnsafePointer<Float>, input: Tensor, output: Tensor) {
        if let winograd {
            winograd.forward(samples: N, filters: filters, input: input, output: output)
            return
        }
        let gemm = gemm!
        for n in 0..<N {
            gemm.forward(filters: filters, columns: gemm.pack(input.sample(n)), out: output.sample(n))
        }
    }

    /// The backward of the last `forward` (same filters and input): writes filterGradient and, when
    /// given, inputGradient; `afterImage(n)` runs once image n's input gradient is complete.
    func backward(samples N: Int, filters: UnsafePointer<Float>, input: Tensor, outGradient: Tensor,
                  filterGradient: UnsafeMutablePointer<Float>, inputGradient: Tensor?,
                  afterImage: (Int) -> Void = { _ in }) {
        if let winograd {
            winograd.backward(samples: N, outGradient: outGradient, filterGradient: filterGradient,
                              inputGradient: inputGradient, afterImage: afterImage)
        } else {
            gemm!.backward(samples: N, filters: filters, input: input, outGradient: outGradient,
                           filterGradient: filterGradient, inputGradient: inputGradient, afterImage: afterImage)
        }
    }
}
