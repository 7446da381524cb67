import DCNetLayers
import DCNetRandom
import DCNetTensor
import Foundation

/// A feed-forward classifier: top-level layers, a softmax cross-entropy head, and two flat buffers
/// holding every parameter value and gradient (in forward order), so optimizers and the gradient
/// exchange see contiguous memory. Everything is allocated here, once.
public final class Network {
    public let layers: [Layer]
    public let loss: SoftmaxCrossEntropy
    public let parameters: [Parameter]
    public let parameterCount: Int
    public let values: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    /// Flat-buffer range of each top-level layer's parameters: backward hands these to the gradient
    /// exchange as soon as a layer is done.
    public let layerParameterRanges: [Range<Int>]
    /// Non-learned state (BatchNorm running statistics, running mean patch norms).
    public let state: [StateBuffer]
    public let inputShape: Shape
    public let outputShape: Shape
    /// The input shape of the last layer (what `penultimate` returns for a full batch).
    public let penultimateShape: Shape
    public let arena: Arena

    public init(layers: [Layer], input: Shape, classes: Int, labelSmoothing: Float = 0) {
        self.layers = layers
        self.inputShape = input
        arena = Arena()
        var shape = input, lastInput = input
        for layer in layers {
            lastInput = shape
            shape = layer.build(input: shape, arena: arena)
        }
        penultimateShape = lastInput
        precondition(shape.perSample == classes, "network ends in \(shape), expected \(classes) logits")
        outputShape = shape
        loss = SoftmaxCrossEntropy(classes: classes, labelSmoothing: labelSmoothing)
        loss.build(batch: input.n, arena: arena)

        parameters = layers.flatMap(\.parameters)
        parameterCount = parameters.reduce(0) { $0 + $1.count }
        values = arena.floats(parameterCount)
        gradients = arena.floats(parameterCount)
        var offset = 0
        var ranges: [Range<Int>] = []
        for layer in layers {
            let start = offset
            for p in layer.parameters {
                p.bind(value: values + offset, gradient: gradients + offset)
                offset += p.count
            }
            ranges.append(start..<offset)
        }
        layerParameterRanges = ranges
        state = layers.flatMap(\.state)
    }

    public var valueBuffer: UnsafeMutableBufferPointer<Float> { .init(start: values, count: parameterCount) }
    public var gradientBuffer: UnsafeMutableBufferPointer<Float> { .init(start: gradients, count: parameterCount) }

    /// Every layer, including those inside residual units and sequences.
    public var allLayers: [Layer] {
        func walk(_ l: Layer) -> [Layer] { [l] + l.sublayers.flatMap(walk) }
        return layers.flatMap(walk)
    }

    /// He-normal filters, PyTorch-style uniform linear layers, constants elsewhere. The draws are
    /// DCNetRandom's, so a seed gives the same initial parameters with any Swift version.
    public func initializeParameters(using rng: inout some RandomNumberGenerator) {
        for p in parameters {
            let fanIn = p.dims.dropFirst().reduce(1, *)
            switch p.initializer {
            case .constant(let v):
                p.valueBuffer.update(repeating: v)
            case .heNormal:
                let std = (2 / Float(max(fanIn, 1))).squareRoot()
                for i in 0..<p.count { p.value[i] = std * Float(rng.nextNormal()) }
            case .uniformFanIn(let fan):
                let bound = 1 / Float(max(fan, 1)).squareRoot()
                for i in 0..<p.count { p.value[i] = rng.nextFloat(in: -bound..<bound) }
            }
        }
    }

    /// Logits for a batch (images.shape.n ≤ the built batch).
    public func forward(_ images: Tensor, mode: Mode) -> Tensor {
        layers.reduce(images) { $1.forward($0, mode: mode) }
    }

    /// `forward`, telling `observe(i, ended)` before (false) and after (true) each layer i: what a
    /// profiler times. Kept apart so the plain forward pays nothing for it.
    public func forward(_ images: Tensor, mode: Mode, observe: (Int, Bool) -> Void) -> Tensor {
        var x = images
        for (i, layer) in layers.enumerated() {
            observe(i, false)
            x = layer.forward(x, mode: mode)
            observe(i, true)
        }
        return x
    }

    /// The input of the last layer for a batch, in evaluation mode: for CNN-9 and ResNet-32 the
    /// globally pooled features the linear classifier sees ([n, channels, 1, 1]). It runs the same
    /// layers as `forward` except the last, so the tensor returned is the one `forward` hands the
    /// classifier; it is a view of that layer's output buffer, valid until the next forward pass.
    /// Evaluation mode only: a training-mode pass would move the running statistics without the
    /// backward that belongs to it.
    public func penultimate(_ images: Tensor) -> Tensor {
        layers.dropLast().reduce(images) { $1.forward($0, mode: .evaluation) }
    }

    /// Backpropagates dL/dlogits through every layer, last first, calling `layerDone(i)` once
    /// layer i's parameter gradients are final. Returns dL/dinput when asked for (attacks). With
    /// `parameterGradients` false the parameter gradients are neither computed nor written.
    @discardableResult
    public func backward(
        _ logitGradient: Tensor, inputGradient: Bool = false, parameterGradients: Bool = true,
        layerDone: (Int) throws -> Void = { _ in }
    ) rethrows -> Tensor? {
        var g: Tensor? = logitGradient
        for i in layers.indices.reversed() {
            g = layers[i].backward(
                g!, needInputGradient: i > 0 || inputGradient, needParameterGradients: parameterGradients)
            try layerDone(i)
        }
        return g
    }
}
