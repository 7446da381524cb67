import DCNetTensor

/// Batch normalisation over N·H·W per channel (Ioffe & Szegedy, 2015), PyTorch's conventions:
/// biased variance to normalise, unbiased variance into the running estimate, momentum 0.1, eps 1e-5.
///
/// With a `statisticsReducer` the batch statistics (and their gradients) are summed over replicas,
/// so the layer normalises with the global batch: synchronised BatchNorm.
///
/// With `relu` the layer is BatchNorm followed by ReLU in one pass: the ReLU's own output tensor and
/// its two passes over memory (about 3% of a CNN-9 step) go away, and backward masks dL/dy on the
/// fly with the kept output.
public final class BatchNorm2D: Layer {
    public let name: String
    public let channels: Int
    public let epsilon: Float
    public let momentum: Float
    public let scale: Parameter
    public let shift: Parameter
    /// max(0, ·) applied to the output.
    public let relu: Bool
    public var statisticsReducer: StatisticsReducer?

    private var runningMean: UnsafeMutablePointer<Float>!, runningVariance: UnsafeMutablePointer<Float>!
    private var normalized: Tensor!, output: Tensor!, inputGradient: Tensor!
    private var invStd: UnsafeMutablePointer<Float>!
    private var sums: UnsafeMutablePointer<Double>!
    private var lastMode: Mode = .training
    private var lastCount = 1

    public init(_ name: String, channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1, relu: Bool = false) {
        self.name = name; self.channels = channels; self.epsilon = epsilon; self.momentum = momentum
        self.relu = relu
        scale = Parameter("\(name).weight", dims: [channels], role: .batchNormScale, initializer: .constant(1))
        shift = Parameter("\(name).bias", dims: [channels], role: .batchNormShift, initializer: .constant(0))
    }

    public var parameters: [Parameter] { [scale, shift] }
    public var state: [StateBuffer] {
        [StateBuffer(name: "\(name).running_mean", data: runningMean, count: channels),
         StateBuffer(name: "\(name).running_var", data: runningVariance, count: channels)]
    }

    public func build(input: Shape, arena: Arena) -> Shape {
        precondition(input.c == channels, "\(name): expects \(channels) channels, got \(input)")
        runningMean = arena.floats(channels)
        runningVariance = arena.floats(channels)
        runningVariance.update(repeating: 1, count: channels)
        normalized = arena.tensor(input); output = arena.tensor(input); inputGradient = arena.tensor(input)
        invStd = arena.floats(channels)
        sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * channels)
        return input
    }
    deinit { sums?.deallocate() }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        lastMode = mode
        let N = x.shape.n, C = channels, HW = x.shape.spatial
        if mode == .training {
            // Moments around the running mean (the same on every replica) avoid the cancellation of
            // E[x²] − E[x]² when the mean is large next to the spread.
            for c in 0..<C {
                var s1 = 0.0, s2 = 0.0
                let shiftValue = runningMean[c]
                for n in 0..<N {
                    let (a, b) = shiftedMoments(x.sample(n) + c * HW, HW, shift: shiftValue)
                    s1 += Double(a); s2 += Double(b)
                }
                sums[c] = s1; sums[C + c] = s2
            }
            var count = N * HW
            if let r = statisticsReducer {
                r.sum(UnsafeMutableBufferPointer(start: sums, count: 2 * C))
                count *= r.replicas
            }
            lastCount = count
            for c in 0..<C {
                let m1 = sums[c] / Double(count)
                let variance = max(sums[C + c] / Double(count) - m1 * m1, 0)
                let mean = Double(runningMean[c]) + m1
                invStd[c] = Float(1 / (variance + Double(epsilon)).squareRoot())
                let unbiased = count > 1 ? variance * Double(count) / Double(count - 1) : variance
                runningMean[c] = (1 - momentum) * runningMean[c] + momentum * Float(mean)
                runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * Float(unbiased)
                sums[c] = mean  // keep the batch mean for the normalisation below
            }
        } else {
            for c in 0..<C {
                sums[c] = Double(runningMean[c])
                invStd[c] = 1 / (runningVariance[c] + epsilon).squareRoot()
            }
        }
        let xh = normalized.prefix(samples: N), y = output.prefix(samples: N)
        // The fused ReLU is a floor of 0 on the output; without it the floor lets every value through.
        let floor: Float = relu ? 0 : -.infinity
        for n in 0..<N {
            for c in 0..<C {
                let mean = Float(sums[c]), inv = invStd[c], g = scale.value[c], b = shift.value[c]
                let src = x.sample(n) + c * HW, nh = xh.sample(n) + c * HW, out = y.sample(n) + c * HW
                for i in 0..<HW {
                    let v = (src[i] - mean) * inv
                    nh[i] = v
                    out[i] = max(v * g + b, floor)
                }
            }
        }
        return y
    }

    /// dL/dy through the fused ReLU: zero where the output `y` was clamped.
    @inline(__always)
    private func passed(_ g: Float, _ y: Float) -> Float { relu && !(y > 0) ? 0 : g }

    public func backward(_ dy: Tensor, needInputGradient: Bool) -> Tensor? {
        let N = dy.shape.n, C = channels, HW = dy.shape.spatial
        let xh = normalized.prefix(samples: N), y = output.prefix(samples: N)
        for c in 0..<C {
            var sdy = 0.0, sdyx = 0.0
            for n in 0..<N {
                let offset = n * dy.shape.perSample + c * HW
                let (a, b) = gradientSums(dy.data + offset, xh.data + offset, mask: relu ? y.data + offset : nil, HW)
                sdy += Double(a); sdyx += Double(b)
            }
            shift.gradient[c] = Float(sdy)
            scale.gradient[c] = Float(sdyx)
            sums[c] = sdy; sums[C + c] = sdyx
        }
        guard needInputGradient else { return nil }
        let dx = inputGradient.prefix(samples: N)
        if lastMode == .evaluation {
            for n in 0..<N {
                for c in 0..<C {
                    let k = scale.value[c] * invStd[c]
                    let g = dy.sample(n) + c * HW, out = dx.sample(n) + c * HW, m = y.sample(n) + c * HW
                    for i in 0..<HW { out[i] = k * passed(g[i], m[i]) }
                }
            }
            return dx
        }
        if let r = statisticsReducer { r.sum(UnsafeMutableBufferPointer(start: sums, count: 2 * C)) }
        let count = Float(lastCount)
        for c in 0..<C {
            let k = scale.value[c] * invStd[c]
            let meanDy = Float(sums[c]) / count, meanDyX = Float(sums[C + c]) / count
            for n in 0..<N {
                let g = dy.sample(n) + c * HW, h = xh.sample(n) + c * HW, out = dx.sample(n) + c * HW
                let m = y.sample(n) + c * HW
                for i in 0..<HW { out[i] = k * (passed(g[i], m[i]) - meanDy - h[i] * meanDyX) }
            }
        }
        return dx
    }
}

/// (Σ g, Σ g·h) over g = dL/dy, masked to 0 where `mask` (the ReLU output) is not positive, with
/// eight partial sums, in one pass.
@inline(__always)
func gradientSums(_ g: UnsafePointer<Float>, _ h: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
                  _ n: Int) -> (Float, Float) {
    var a1 = SIMD8<Float>(), a2 = SIMD8<Float>()
    let rg = UnsafeRawPointer(g), rh = UnsafeRawPointer(h)
    var i = 0
    if let mask {
        let rm = UnsafeRawPointer(mask), zero = SIMD8<Float>()
        while i + 8 <= n {
            let m = rm.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let d = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self).replacing(with: zero, where: m .<= zero)
            a1 += d; a2 += d * rh.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
    } else {
        while i + 8 <= n {
            let d = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            a1 += d; a2 += d * rh.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
    }
    var s1 = a1.sum(), s2 = a2.sum()
    while i < n {
        let d = mask.map { $0[i] > 0 ? g[i] : 0 } ?? g[i]
        s1 += d; s2 += d * h[i]; i += 1
    }
    return (s1, s2)
}

/// (Σ (x − shift), Σ (x − shift)²) with eight partial sums.
@inline(__always)
func shiftedMoments(_ x: UnsafePointer<Float>, _ n: Int, shift: Float) -> (Float, Float) {
    var a1 = SIMD8<Float>(), a2 = SIMD8<Float>()
    let s = SIMD8<Float>(repeating: shift)
    let raw = UnsafeRawPointer(x)
    var i = 0
    while i + 8 <= n {
        let d = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - s
        a1 += d; a2 += d * d
        i += 8
    }
    var s1 = a1.sum(), s2 = a2.sum()
    while i < n { let d = x[i] - shift; s1 += d; s2 += d * d; i += 1 }
    return (s1, s2)
}
