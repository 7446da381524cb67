import DCNetTensor

/// Batch normalisation over N·H·W per channel (Ioffe & Szegedy, 2015), PyTorch's conventions:
/// biased variance to normalise, unbiased variance into the running estimate, momentum 0.1, eps 1e-5.
///
/// With a `statisticsReducer` the batch statistics (and their gradients) are summed over replicas,
/// so the layer normalises with the global batch: synchronised BatchNorm.
///
/// With `relu` the layer is BatchNorm followed by ReLU in one pass: the ReLU's own output tensor and
/// its two passes over memory (about 3% of a CNN-9 step) go away.
///
/// Backward recomputes the normalised input x̂ = (x − mean)·invStd, and the ReLU mask from it, out
/// of the kept input instead of storing x̂: with two ranks sharing the memory bus, a tensor written
/// in forward and read twice in backward costs more than a multiply-subtract per element.
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
    private var input: Tensor!, output: Tensor!, inputGradient: Tensor!
    /// The mean and 1/std the last forward normalised with (batch or running statistics).
    private var mean: UnsafeMutablePointer<Float>!, invStd: UnsafeMutablePointer<Float>!
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
        [
            StateBuffer(name: "\(name).running_mean", data: runningMean, count: channels),
            StateBuffer(name: "\(name).running_var", data: runningVariance, count: channels),
        ]
    }

    public func build(input: Shape, arena: Arena) -> Shape {
        alwaysPrecondition(input.c == channels, "\(name): expects \(channels) channels, got \(input)")
        runningMean = arena.floats(channels)
        runningVariance = arena.floats(channels)
        runningVariance.update(repeating: 1, count: channels)
        output = arena.tensor(input); inputGradient = arena.tensor(input)
        mean = arena.floats(channels); invStd = arena.floats(channels)
        sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * channels)
        return input
    }
    deinit { sums?.deallocate() }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        input = x; lastMode = mode
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
                let batchMean = Double(runningMean[c]) + m1
                mean[c] = Float(batchMean)
                invStd[c] = Float(1 / (variance + Double(epsilon)).squareRoot())
                let unbiased = count > 1 ? variance * Double(count) / Double(count - 1) : variance
                runningMean[c] = (1 - momentum) * runningMean[c] + momentum * Float(batchMean)
                runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * Float(unbiased)
            }
        } else {
            for c in 0..<C {
                mean[c] = runningMean[c]
                invStd[c] = 1 / (runningVariance[c] + epsilon).squareRoot()
            }
        }
        let y = output.prefix(samples: N)
        for n in 0..<N {
            for c in 0..<C {
                let affine = channelAffine(c)
                affine.forward(x.sample(n) + c * HW, into: y.sample(n) + c * HW, HW)
            }
        }
        return y
    }

    private func channelAffine(_ c: Int) -> BatchNormAffine {
        BatchNormAffine(mean: mean[c], invStd: invStd[c], scale: scale.value[c], shift: shift.value[c], relu: relu)
    }

    public func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
        let N = dy.shape.n, C = channels, HW = dy.shape.spatial
        let x = input.prefix(samples: N)
        let training = lastMode == .training
        // The sums are the parameter gradients, and in training also terms of dL/dx.
        let needSums = needParameterGradients || (training && needInputGradient)
        for c in 0..<C where needSums {
            let affine = channelAffine(c)
            var sdy = 0.0, sdyx = 0.0
            for n in 0..<N {
                let offset = n * dy.shape.perSample + c * HW
                let (a, b) = affine.gradientSums(dy.data + offset, x.data + offset, HW)
                sdy += Double(a); sdyx += Double(b)
            }
            if needParameterGradients { shift.gradient[c] = Float(sdy); scale.gradient[c] = Float(sdyx) }
            sums[c] = sdy; sums[C + c] = sdyx
        }
        guard needInputGradient else { return nil }
        let dx = inputGradient.prefix(samples: N)
        // In evaluation the statistics are constants: dL/dx = scale·invStd·dL/dx̂.
        if training, let r = statisticsReducer { r.sum(UnsafeMutableBufferPointer(start: sums, count: 2 * C)) }
        let count = Float(lastCount)
        for c in 0..<C {
            let affine = channelAffine(c)
            let meanDy = training ? Float(sums[c]) / count : 0, meanDyX = training ? Float(sums[C + c]) / count : 0
            for n in 0..<N {
                let offset = n * dy.shape.perSample + c * HW
                affine.inputGradient(
                    dy.data + offset, x.data + offset, meanDy: meanDy, meanDyX: meanDyX,
                    into: dx.data + offset, HW)
            }
        }
        return dx
    }
}

/// One channel's normalisation y = max(x̂·scale + shift, floor) with x̂ = (x − mean)·invStd, and its
/// backward. Forward and backward evaluate x̂ and the ReLU test with the same operations in the same
/// order, so the recomputed mask is exactly the forward's.
struct BatchNormAffine {
    let mean: Float, invStd: Float, scale: Float, shift: Float, relu: Bool

    @inline(__always) func normalized(_ x: SIMD8<Float>) -> SIMD8<Float> {
        (x - SIMD8(repeating: mean)) * SIMD8(repeating: invStd)
    }
    @inline(__always) func normalized(_ x: Float) -> Float { (x - mean) * invStd }
    @inline(__always) func affine(_ v: SIMD8<Float>) -> SIMD8<Float> {
        v * SIMD8(repeating: scale) + SIMD8(repeating: shift)
    }
    @inline(__always) func affine(_ v: Float) -> Float { v * scale + shift }
    /// The fused ReLU is a floor of 0 on the output; without it the floor lets every value through.
    var floor: Float { relu ? 0 : -.infinity }
    /// dL/dy through the fused ReLU: zero where the output was clamped (where x̂·scale + shift is not > 0).
    @inline(__always) func passed(_ g: SIMD8<Float>, _ v: SIMD8<Float>) -> SIMD8<Float> {
        relu ? g.replacing(with: 0, where: .!(affine(v) .> 0)) : g
    }
    @inline(__always) func passed(_ g: Float, _ v: Float) -> Float { relu && !(affine(v) > 0) ? 0 : g }

    func forward(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        let floors = SIMD8<Float>(repeating: floor)
        var i = 0
        while i + 8 <= n {
            let v = affine(normalized(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)))
            ry.storeBytes(of: v.replacing(with: floors, where: v .< floors), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            let v = affine(normalized(x[i]))
            y[i] = v < floor ? floor : v
            i += 1
        }
    }

    /// (Σ g, Σ g·x̂) over g = dL/dy through the ReLU, with eight partial sums, in one pass.
    func gradientSums(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        var a1 = SIMD8<Float>(), a2 = SIMD8<Float>()
        let rg = UnsafeRawPointer(g), rx = UnsafeRawPointer(x)
        var i = 0
        while i + 8 <= n {
            let v = normalized(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            let d = passed(rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), v)
            a1 += d; a2 += d * v
            i += 8
        }
        var s1 = a1.sum(), s2 = a2.sum()
        while i < n {
            let v = normalized(x[i]), d = passed(g[i], v)
            s1 += d; s2 += d * v; i += 1
        }
        return (s1, s2)
    }

    /// dL/dx = scale·invStd·(g − mean(g) − x̂·mean(g·x̂)), g = dL/dy through the ReLU.
    func inputGradient(
        _ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, meanDy: Float, meanDyX: Float,
        into dx: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let k = scale * invStd
        let rg = UnsafeRawPointer(g), rx = UnsafeRawPointer(x), rd = UnsafeMutableRawPointer(dx)
        let vk = SIMD8<Float>(repeating: k), vDy = SIMD8<Float>(repeating: meanDy),
            vDyX = SIMD8<Float>(repeating: meanDyX)
        var i = 0
        while i + 8 <= n {
            let v = normalized(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            let d = passed(rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), v)
            rd.storeBytes(of: vk * (d - vDy - v * vDyX), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            let v = normalized(x[i])
            dx[i] = k * (passed(g[i], v) - meanDy - v * meanDyX); i += 1
        }
    }
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
