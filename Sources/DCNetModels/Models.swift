import DCNetLayers
import DCNetTensor

/// Which operator every convolution of a network uses.
public enum ConvolutionKind: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Inner-product convolution (with a bias when the network has no BatchNorm).
    case baseline
    case decoupled(DecoupledOperator)

    public var description: String {
        switch self {
        case .baseline: return "baseline"
        case .decoupled(let op):
            var s = "\(op.magnitude)+\(op.angular)"
            if op.weighting != .none { s += " weighted:\(op.weighting)" }
            if op.usesRadius {
                switch op.radius {
                case .learnable: s += " learnable-radius"
                case .relative: s += " relative-radius"
                case .fixed(let r): s += " radius=\(r)"
                }
            }
            return s
        }
    }
}

public enum Architecture: String, Hashable, Sendable, Codable, CaseIterable {
    /// Three stages of three 3×3 convolutions, 2×2 max-pool after stages 1 and 2, global average
    /// pooling, linear classifier (the plain CNN of the paper's CIFAR experiments).
    case cnn9
    /// 3×3 stem, three stages of five basic residual units (stride 2 at stages 2 and 3), 1×1
    /// projection shortcuts where the width changes, global average pooling, linear classifier.
    case resnet32

    public var defaultWidths: [Int] {
        switch self {
        case .cnn9: return [64, 128, 256]
        case .resnet32: return [96, 192, 384]
        }
    }
}

/// How CNN-9 halves the resolution after its first two stages.
public enum Downsampling: String, Hashable, Sendable, Codable, CaseIterable {
    /// 2×2 max pooling (the paper's CNN-9). It is itself non-linear: a network without ReLU stays
    /// non-linear through it.
    case max
    /// 2×2 average pooling: linear, so a network without ReLU is linear unless its convolutions are not.
    case average
}

/// Everything that determines a network's structure; stored in checkpoints so a checkpoint can only
/// be loaded into the network it was written from.
public struct ModelConfig: Hashable, Sendable, Codable {
    public var architecture: Architecture
    /// Channel widths of the three stages (after the width multiplier).
    public var widths: [Int]
    public var convolution: ConvolutionKind
    public var batchNorm: Bool
    public var relu: Bool
    public var classes: Int
    public var labelSmoothing: Float
    /// CNN-9's pooling between stages (nil: max, what configurations written before it existed used).
    public var downsampling: Downsampling?

    public init(
        architecture: Architecture, widthMultiplier: Double = 1, widths: [Int]? = nil,
        convolution: ConvolutionKind = .baseline, batchNorm: Bool = true, relu: Bool = true,
        classes: Int = 10, labelSmoothing: Float = 0, downsampling: Downsampling? = nil
    ) {
        self.architecture = architecture
        let base = widths ?? architecture.defaultWidths
        self.widths = base.map { max(1, Int((Double($0) * widthMultiplier).rounded())) }
        self.convolution = convolution
        self.batchNorm = batchNorm; self.relu = relu
        self.classes = classes; self.labelSmoothing = labelSmoothing
        self.downsampling = downsampling == .max ? nil : downsampling
    }

    /// Builds the network for batches of up to `batch` CIFAR images (3×32×32). `algorithm` and
    /// `precision` (of the convolution and linear GEMMs) are not part of the configuration: a
    /// checkpoint loads into a network built with any of them.
    public func makeNetwork(
        batch: Int, algorithm: ConvolutionAlgorithm = .standard, precision: Precision = .fp32
    ) -> Network {
        let layers: [Layer]
        let engine = Engine(algorithm: algorithm, precision: precision)
        switch architecture {
        case .cnn9: layers = cnn9Layers(engine)
        case .resnet32: layers = resnet32Layers(engine)
        }
        return Network(
            layers: layers, input: Shape(n: batch, c: 3, h: 32, w: 32),
            classes: classes, labelSmoothing: labelSmoothing)
    }

    /// How the layers compute (not part of the configuration).
    private struct Engine {
        var algorithm: ConvolutionAlgorithm
        var precision: Precision
    }

    private func convolution(
        _ name: String, _ cin: Int, _ cout: Int, kernel: Int, stride: Int = 1, algorithm: Engine
    ) -> Layer {
        let padding = kernel / 2
        switch self.convolution {
        case .baseline:
            return Conv2D(
                name, inChannels: cin, outChannels: cout, kernel: kernel, stride: stride,
                padding: padding, bias: !batchNorm, algorithm: algorithm.algorithm,
                precision: algorithm.precision)
        case .decoupled(let op):
            return DecoupledConv2D(
                name, inChannels: cin, outChannels: cout, kernel: kernel, stride: stride,
                padding: padding, operator: op, algorithm: algorithm.algorithm,
                precision: algorithm.precision)
        }
    }

    /// Convolution, then BatchNorm and ReLU as configured (one fused layer when both are on).
    private func convUnit(
        _ name: String, _ cin: Int, _ cout: Int, kernel: Int = 3, stride: Int = 1,
        activation: Bool = true, algorithm: Engine
    ) -> [Layer] {
        var ls = [convolution("\(name).conv", cin, cout, kernel: kernel, stride: stride, algorithm: algorithm)]
        let reluHere = relu && activation
        if batchNorm {
            ls.append(BatchNorm2D("\(name).bn", channels: cout, relu: reluHere))
        } else if reluHere {
            ls.append(ReLU("\(name).relu"))
        }
        return ls
    }

    private func cnn9Layers(_ algorithm: Engine) -> [Layer] {
        var layers: [Layer] = []
        var cin = 3
        for (s, width) in widths.enumerated() {
            for i in 0..<3 {
                layers += convUnit("stage\(s + 1).\(i + 1)", cin, width, algorithm: algorithm)
                cin = width
            }
            if s < widths.count - 1 {
                switch downsampling ?? .max {
                case .max: layers.append(MaxPool2D("pool\(s + 1)"))
                case .average: layers.append(AvgPool2D("pool\(s + 1)", size: 2, stride: 2))
                }
            }
        }
        layers.append(AvgPool2D("global_pool"))
        layers.append(Linear("classifier", inFeatures: cin, outFeatures: classes, precision: algorithm.precision))
        return layers
    }

    private func resnet32Layers(_ algorithm: Engine) -> [Layer] {
        var layers: [Layer] = convUnit("stem", 3, widths[0], algorithm: algorithm)
        var cin = widths[0]
        for (s, width) in widths.enumerated() {
            for u in 0..<5 {
                let stride = (s > 0 && u == 0) ? 2 : 1
                let name = "stage\(s + 1).unit\(u + 1)"
                let main = Sequential(
                    "\(name).main",
                    convUnit("\(name).a", cin, width, stride: stride, algorithm: algorithm)
                        + convUnit("\(name).b", width, width, activation: false, algorithm: algorithm))
                var shortcut: Sequential?
                if cin != width || stride != 1 {
                    shortcut = Sequential(
                        "\(name).shortcut",
                        convUnit(
                            "\(name).projection", cin, width, kernel: 1, stride: stride,
                            activation: false, algorithm: algorithm))
                }
                layers.append(ResidualUnit(name, main: main, shortcut: shortcut, activation: relu))
                cin = width
            }
        }
        layers.append(AvgPool2D("global_pool"))
        layers.append(Linear("classifier", inFeatures: cin, outFeatures: classes, precision: algorithm.precision))
        return layers
    }
}
