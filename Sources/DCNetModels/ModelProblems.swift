import DCNetLayers

extension ModelConfig {
    /// Bounds far above any CIFAR network, low enough that a damaged or hostile configuration cannot
    /// make the network builder allocate without limit.
    public static let maxWidth = 16384
    public static let maxClasses = 1000

    /// Reasons this configuration cannot be built or trained, each naming the command-line flag
    /// and the value (the trainer and the command line check the same rules).
    public func problems() -> [String] {
        var p: [String] = []
        if widths.count != 3 { p.append("widths must list the 3 stages' channels (got \(widths))") }
        if widths.contains(where: { $0 <= 0 }) { p.append("--width gives a stage with no channels") }
        if widths.contains(where: { $0 > Self.maxWidth }) {
            p.append("--width gives a stage wider than \(Self.maxWidth) channels (got \(widths))")
        }
        if !(1...Self.maxClasses).contains(classes) {
            p.append("classes must be in 1...\(Self.maxClasses) (got \(classes))")
        }
        if !(0..<1).contains(labelSmoothing) {
            p.append("--label-smoothing must be in [0, 1) (got \(labelSmoothing))")
        }
        if downsampling == .average && architecture != .cnn9 {
            p.append("--pooling average applies to cnn9 only (resnet32 downsamples with strided convolutions)")
        }
        if case .decoupled(let op) = convolution { p += op.problems() }
        return p
    }
}

extension DecoupledOperator {
    /// Reasons this operator is not one of the paper's, each naming the command-line flag.
    public func problems() -> [String] {
        var p: [String] = []
        if !(alpha > 0) { p.append("--alpha must be positive (got \(alpha))") }
        if case .segmented(let beta) = magnitude, !(beta >= 0) { p.append("--beta must be ≥ 0 (got \(beta))") }
        if !(sharpness > 0) { p.append("--sharpness must be positive (got \(sharpness))") }
        switch radius {
        case .learnable(let decay), .relative(let decay):
            if !(decay > 0 && decay < 1) { p.append("--radius-decay must be in (0, 1) (got \(decay))") }
        case .fixed(let r):
            if !(r > 0) { p.append("--radius must be positive (got \(r))") }
        }
        switch weighting {
        case .linear where magnitude != .linear:
            p.append("--weighted linear is alpha·||w||·||x||·g(theta): use it with --operator linear")
        case .nonlinear where magnitude != .tanh, .separable where magnitude != .tanh:
            p.append("--weighted \(weighting.rawValue) is a tanh form: use it with --operator tanh")
        default:
            // The relative radius is the default and may go unused; a fixed or learnable one was asked for.
            if case .relative = radius {
            } else if !usesRadius {
                p.append(
                    "--operator \(magnitude.flagName) with --weighted \(weighting.rawValue) has no operator radius")
            }
        }
        if learnableSharpness && angular != .sigmoid { p.append("--learnable-sharpness needs --angular sigmoid") }
        // k = |k_raw| + offset starts at --sharpness through k_raw = sharpness − offset: below the offset,
        // k_raw < 0 and k would start at 2·offset − sharpness, not the value asked for.
        if learnableSharpness && sharpness < Self.sharpnessOffset {
            p.append(
                "--sharpness with --learnable-sharpness is the start of k = |k_raw| + \(Self.sharpnessOffset) "
                    + "and must be at least \(Self.sharpnessOffset) (got \(sharpness))")
        }
        return p
    }
}

extension MagnitudeFunction {
    /// The `--operator` value that selects this function.
    var flagName: String {
        switch self {
        case .sphere: return "sphere"
        case .ball: return "ball"
        case .tanh: return "tanh"
        case .linear: return "linear"
        case .segmented: return "seg"
        case .logarithmic: return "log"
        }
    }
}
