import DCNetTensor

/// Layers applied one after another, as one layer.
public final class Sequential: Layer {
    public let name: String
    public let layers: [Layer]
    public init(_ name: String, _ layers: [Layer]) { self.name = name; self.layers = layers }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    public var state: [StateBuffer] { layers.flatMap(\.state) }
    public var sublayers: [Layer] { layers }

    public func build(input: Shape, arena: Arena) -> Shape {
        layers.reduce(input) { $1.build(input: $0, arena: arena) }
    }
    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        layers.reduce(x) { $1.forward($0, mode: mode) }
    }
    public func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
        var g: Tensor? = dy
        for (i, layer) in layers.enumerated().reversed() {
            g = layer.backward(
                g!, needInputGradient: needInputGradient || i > 0, needParameterGradients: needParameterGradients)
        }
        return g
    }
}

/// A basic residual unit: y = act(main(x) + shortcut(x)), the shortcut being the identity or a
/// projection (1×1 convolution, with BatchNorm when the network uses it) where the shape changes.
public final class ResidualUnit: Layer {
    public let name: String
    public let main: Sequential
    public let shortcut: Sequential?
    public let activation: ReLU?
    private var sum: Tensor!, inputGradient: Tensor!

    public init(_ name: String, main: Sequential, shortcut: Sequential?, activation: Bool) {
        self.name = name; self.main = main; self.shortcut = shortcut
        self.activation = activation ? ReLU("\(name).relu") : nil
    }

    public var parameters: [Parameter] { main.parameters + (shortcut?.parameters ?? []) }
    public var state: [StateBuffer] { main.state + (shortcut?.state ?? []) }
    public var sublayers: [Layer] { [main] + (shortcut.map { [$0] } ?? []) + (activation.map { [$0] } ?? []) }

    public func build(input: Shape, arena: Arena) -> Shape {
        let out = main.build(input: input, arena: arena)
        let shortcutOut = shortcut?.build(input: input, arena: arena) ?? input
        alwaysPrecondition(out == shortcutOut, "\(name): main branch \(out) and shortcut \(shortcutOut) differ")
        sum = arena.tensor(out)
        inputGradient = arena.tensor(input)
        _ = activation?.build(input: out, arena: arena)
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let m = main.forward(x, mode: mode)
        let s = shortcut?.forward(x, mode: mode) ?? x
        let y = sum.prefix(samples: x.shape.n)
        for i in 0..<y.count { y.data[i] = m.data[i] + s.data[i] }
        return activation?.forward(y, mode: mode) ?? y
    }

    public func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
        let g = activation?.backward(dy, needInputGradient: true) ?? dy
        let dMain = main.backward(
            g, needInputGradient: needInputGradient, needParameterGradients: needParameterGradients)
        let dShort =
            shortcut.map {
                $0.backward(g, needInputGradient: needInputGradient, needParameterGradients: needParameterGradients)
            } ?? g
        guard needInputGradient, let dMain, let dShort else { return nil }
        let dx = inputGradient.prefix(samples: dy.shape.n)
        for i in 0..<dx.count { dx.data[i] = dMain.data[i] + dShort.data[i] }
        return dx
    }
}
