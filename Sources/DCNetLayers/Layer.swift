import DCNetTensor

public enum Mode: Sendable { case training, evaluation }

/// What an optimizer needs to know about a parameter: the authors apply no weight decay to
/// decoupled filters and operator radii, and weight projection applies to decoupled filters only.
public enum ParameterRole: String, Sendable, Codable {
    case convolutionWeight, decoupledFilter, bias, batchNormScale, batchNormShift
    case radius, angularSharpness, linearWeight
}

/// A learnable tensor. Its value and gradient are views into the network's two flat buffers
/// (bound once by `Network`), so the gradient exchange can all-reduce contiguous buckets.
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let dims: [Int]
    public let role: ParameterRole
    /// Fills the value at initialisation (He-normal filters, ones, zeros...).
    public let initializer: Initializer
    public private(set) var value: UnsafeMutablePointer<Float>!
    public private(set) var gradient: UnsafeMutablePointer<Float>!
    public var count: Int { dims.reduce(1, *) }

    public init(_ name: String, dims: [Int], role: ParameterRole, initializer: Initializer) {
        self.name = name; self.dims = dims; self.role = role; self.initializer = initializer
    }
    public func bind(value: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>) {
        self.value = value; self.gradient = gradient
    }
    public var valueBuffer: UnsafeMutableBufferPointer<Float> { .init(start: value, count: count) }
    public var gradientBuffer: UnsafeMutableBufferPointer<Float> { .init(start: gradient, count: count) }
}

public enum Initializer: Sendable {
    /// N(0, 2 / fanIn), fanIn = dims[1...] product (He et al.).
    case heNormal
    case constant(Float)
    /// U(-1/sqrt(fanIn), 1/sqrt(fanIn)), PyTorch's default for linear layers and biases.
    case uniformFanIn(Int)
}

/// Non-learned state that evaluation needs and checkpoints must carry (BatchNorm running
/// statistics, the running mean patch norm of decoupled layers).
public struct StateBuffer: @unchecked Sendable {
    public let name: String
    public let data: UnsafeMutablePointer<Float>
    public let count: Int
    public init(name: String, data: UnsafeMutablePointer<Float>, count: Int) {
        self.name = name; self.data = data; self.count = count
    }
}

/// Sums small statistic vectors across data-parallel replicas (synchronised BatchNorm and the
/// decoupled layers' mean patch norm). `nil` means statistics are per replica.
public protocol StatisticsReducer: AnyObject {
    /// Sums `values` element-wise over all replicas, in place.
    func sum(_ values: UnsafeMutableBufferPointer<Float>)
    func sum(_ values: UnsafeMutableBufferPointer<Double>)
    /// Number of replicas taking part.
    var replicas: Int { get }
}

/// One stage of a network with an explicit forward/backward pair (as in llm.c): every buffer is
/// allocated in `build`, so `forward` and `backward` never allocate.
public protocol Layer: AnyObject {
    var name: String { get }
    /// Allocates outputs and workspaces for batches of up to `input.n` samples; returns the output shape.
    func build(input: Shape, arena: Arena) -> Shape
    /// Computes the output for `x` (x.shape.n may be smaller than the built batch).
    func forward(_ x: Tensor, mode: Mode) -> Tensor
    /// Given dL/dy, writes (not accumulates) the parameter gradients and returns dL/dx
    /// (`nil` when `needInputGradient` is false, e.g. for the first layer). With
    /// `needParameterGradients` false the parameter gradients are left as they were and their
    /// products are skipped: an attack only needs dL/dx, and the filter-gradient GEMM is a third
    /// of a convolution's work.
    func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor?
    var parameters: [Parameter] { get }
    var state: [StateBuffer] { get }
    /// Layers that contain others (residual units) list them so hooks see every leaf.
    var sublayers: [Layer] { get }
}

public extension Layer {
    /// The training backward: parameter gradients and, when asked for, dL/dx.
    func backward(_ dy: Tensor, needInputGradient: Bool) -> Tensor? {
        backward(dy, needInputGradient: needInputGradient, needParameterGradients: true)
    }
    var parameters: [Parameter] { [] }
    var state: [StateBuffer] { [] }
    var sublayers: [Layer] { [] }
}

extension Shape {
    func with(n: Int) -> Shape { var s = self; s.n = n; return s }
}
