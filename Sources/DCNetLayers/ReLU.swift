import DCNetTensor

public final class ReLU: Layer {
    public let name: String
    private var output: Tensor!, inputGradient: Tensor!
    public init(_ name: String) { self.name = name }

    public func build(input: Shape, arena: Arena) -> Shape {
        output = arena.tensor(input); inputGradient = arena.tensor(input)
        return input
    }
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = output.prefix(samples: x.shape.n)
        let src = x.data, dst = y.data
        for i in 0..<x.count { dst[i] = max(src[i], 0) }
        return y
    }
    public func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
        guard needInputGradient else { return nil }
        let dx = inputGradient.prefix(samples: dy.shape.n)
        let y = output.data, g = dy.data, out = dx.data
        for i in 0..<dy.count { out[i] = y[i] > 0 ? g[i] : 0 }
        return dx
    }
}
