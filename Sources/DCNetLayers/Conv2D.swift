import BLAS
import DCNetTensor

/// The baseline inner-product convolution <w, x> (+ bias), kept for comparison with the
/// decoupled operators.
public final class Conv2D: Layer {
    public let name: String
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weight: Parameter
    public let bias: Parameter?
    /// Requested when the layer is made; `build` falls back to im2col + GEMM where Winograd does not apply.
    public let algorithm: ConvolutionAlgorithm
    /// The arithmetic of the convolution's GEMMs (`Precision`).
    public let precision: Precision
    private var engine: ConvolutionEngine!
    /// The algorithm the built layer uses (im2col + GEMM where Winograd does not apply).
    var engineAlgorithm: ConvolutionAlgorithm { engine.algorithm }
    private var output: Tensor!
    private var inputGradient: Tensor!
    private var input: Tensor!

    public init(
        _ name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
        padding: Int = 0, bias: Bool = true, algorithm: ConvolutionAlgorithm = .standard,
        precision: Precision = .fp32
    ) {
        self.name = name; self.algorithm = algorithm; self.precision = precision
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        weight = Parameter(
            "\(name).weight", dims: [outChannels, inChannels, kernel, kernel],
            role: .convolutionWeight, initializer: .heNormal)
        let fanIn = inChannels * kernel * kernel
        self.bias =
            bias
            ? Parameter(
                "\(name).bias", dims: [outChannels], role: .bias,
                initializer: .uniformFanIn(fanIn)) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func build(input: Shape, arena: Arena) -> Shape {
        alwaysPrecondition(input.c == inChannels, "\(name): expects \(inChannels) channels, got \(input)")
        let g = ConvGeometry(
            channels: inChannels, height: input.h, width: input.w,
            kernel: kernel, stride: stride, padding: padding)
        engine = ConvolutionEngine(
            geometry: g, outChannels: outChannels, batch: input.n,
            algorithm: algorithm, precision: precision, arena: arena)
        let out = Shape(n: input.n, c: outChannels, h: g.outHeight, w: g.outWidth)
        output = arena.tensor(out)
        inputGradient = arena.tensor(input)
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        input = x
        let y = output.prefix(samples: x.shape.n)
        let P = engine.positions
        engine.forward(samples: x.shape.n, filters: weight.value, input: x, output: y) { images in
            guard let bias else { return }
            for n in images {
                for k in 0..<outChannels {
                    let b = bias.value[k], row = y.sample(n) + k * P
                    for p in 0..<P { row[p] += b }
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
        let x = input!, P = engine.positions
        if needParameterGradients, let bias {
            for k in 0..<outChannels { bias.gradient[k] = 0 }
            for n in 0..<dy.shape.n {
                for k in 0..<outChannels { bias.gradient[k] += sumFloats(dy.sample(n) + k * P, P) }
            }
        }
        let dx = inputGradient.prefix(samples: x.shape.n)
        engine.backward(
            samples: x.shape.n, filters: weight.value, input: x, outGradient: dy,
            filterGradient: needParameterGradients ? weight.gradient : nil, inputGradient: needInputGradient ? dx : nil)
        return needInputGradient ? dx : nil
    }
}
