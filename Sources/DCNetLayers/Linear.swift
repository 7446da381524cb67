import BLAS
import DCNetTensor

/// Fully connected layer y = x·Wᵀ + b over the flattened sample (one GEMM per batch).
public final class Linear: Layer {
    public let name: String
    public let inFeatures: Int, outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter
    /// The arithmetic of the three GEMMs (`Precision`).
    public let precision: Precision
    private let gemm: GEMM
    private var input: Tensor!, output: Tensor!, inputGradient: Tensor!

    public init(_ name: String, inFeatures: Int, outFeatures: Int, precision: Precision = .fp32) {
        self.name = name; self.inFeatures = inFeatures; self.outFeatures = outFeatures
        self.precision = precision; gemm = GEMM(precision)
        weight = Parameter(
            "\(name).weight", dims: [outFeatures, inFeatures], role: .linearWeight,
            initializer: .uniformFanIn(inFeatures))
        bias = Parameter("\(name).bias", dims: [outFeatures], role: .bias, initializer: .uniformFanIn(inFeatures))
    }
    public var parameters: [Parameter] { [weight, bias] }

    public func build(input: Shape, arena: Arena) -> Shape {
        alwaysPrecondition(input.perSample == inFeatures, "\(name): expects \(inFeatures) features, got \(input)")
        let out = Shape(n: input.n, c: outFeatures)
        output = arena.tensor(out); inputGradient = arena.tensor(input)
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        input = x
        let N = x.shape.n, y = output.prefix(samples: N)
        for n in 0..<N { y.sample(n).update(from: bias.value, count: outFeatures) }
        gemm(
            .none, .transpose, m: N, n: outFeatures, k: inFeatures,
            a: x.data, b: weight.value, beta: 1, c: y.data)
        return y
    }

    public func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
        let N = dy.shape.n
        if needParameterGradients {
            gemm(
                .transpose, .none, m: outFeatures, n: inFeatures, k: N,
                a: dy.data, b: input.data, beta: 0, c: weight.gradient)
            for k in 0..<outFeatures { bias.gradient[k] = 0 }
            for n in 0..<N {
                let g = dy.sample(n)
                for k in 0..<outFeatures { bias.gradient[k] += g[k] }
            }
        }
        guard needInputGradient else { return nil }
        let dx = inputGradient.prefix(samples: N)
        gemm(
            .none, .none, m: N, n: inFeatures, k: outFeatures,
            a: dy.data, b: weight.value, beta: 0, c: dx.data)
        return dx
    }
}
