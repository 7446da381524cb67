import DCNetLayers
import Foundation

/// BENCH_CONV_ALGORITHM=gemm measures im2col + GEMM instead of Winograd. Read from the environment
/// rather than passed down the benches so that train's MPI workers inherit it.
enum BenchConvolution {
    private static let name = ProcessInfo.processInfo.environment["BENCH_CONV_ALGORITHM"] ?? ""

    static let algorithm: ConvolutionAlgorithm = ConvolutionAlgorithm(rawValue: name) ?? .standard

    /// Why the variable cannot be used, checked before any bench runs (nil: unset, empty or valid).
    static var problem: String? {
        guard !name.isEmpty, ConvolutionAlgorithm(rawValue: name) == nil else { return nil }
        return "BENCH_CONV_ALGORITHM=\(name) is not one of"
            + " \(ConvolutionAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))"
    }
}
