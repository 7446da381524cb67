import BLAS
import DCNetTensor
import Foundation

/// A decoupled convolution (Liu et al., 2018): every output is f(w, x) = h(||w||, ||x||)·g(theta)
/// for kernel w and input patch x, with the operator's math in `DecoupledOperator`.
///
/// The response u = <w/||w||, x> comes from the same ConvolutionEngine (Winograd or im2col + GEMM)
/// as the baseline convolution; patch norms ||x|| = sqrt(window sum of Σ_c x² + eps) cost O(R·S)
/// per position. Backward maps dL/du through the engine's adjoint, dL/d||x|| through the window sum
/// onto 2x, and dL/d(w/||w||) onto the raw filter. A 1×1 decoupled convolution on a C×1×1 input
/// is the decoupled fully connected layer.
public final class DecoupledConv2D: Layer {
    public static let normEpsilon: Float = 1e-4
    /// rho_c = (r_c² + radiusFloor)·m keeps the radius positive when r crosses 0.
    public static let radiusFloor: Float = 1e-4

    public let name: String
    public let op: DecoupledOperator
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let weight: Parameter
    /// r per output channel, when the radius is learnable.
    public let radiusParameter: Parameter?
    /// k_raw per output channel, when the sigmoid sharpness is learnable.
    public let sharpnessParameter: Parameter?
    /// Sums the mean patch norm over replicas (set by the trainer for synchronised statistics).
    public var statisticsReducer: StatisticsReducer?

    /// Requested when the layer is made; `build` falls back to im2col + GEMM where Winograd does not apply.
    public let algorithm: ConvolutionAlgorithm
    /// The arithmetic of the convolution's GEMMs (`Precision`). With bf16 operands the response u
    /// can exceed ||x|| by the rounding; forward clamps it to [−||x||, ||x||], so |cos θ| ≤ 1 and
    /// bounded operators stay within [−α, α] (backward passes dL/du straight through).
    public let precision: Precision
    private var engine: ConvolutionEngine!
    /// The algorithm the built layer uses (im2col + GEMM where Winograd does not apply).
    var engineAlgorithm: ConvolutionAlgorithm { engine.algorithm }
    private var input: Tensor!
    private var lastMode: Mode = .training
    private var filterHat: UnsafeMutablePointer<Float>!, filterNorm: UnsafeMutablePointer<Float>!
    private var rho: UnsafeMutablePointer<Float>!, sharpness: UnsafeMutablePointer<Float>!
    private var response: Tensor!, output: Tensor!, inputGradient: Tensor!
    private var patchNorm: UnsafeMutablePointer<Float>!, invPatchNorm: UnsafeMutablePointer<Float>!
    private var patchNormGradient: UnsafeMutablePointer<Float>!
    private var squareMap: UnsafeMutablePointer<Float>!, scratch: UnsafeMutablePointer<Float>!
    private var filterHatGradient: UnsafeMutablePointer<Float>!
    private var dWn: UnsafeMutablePointer<Float>!, dRho: UnsafeMutablePointer<Float>!, dK: UnsafeMutablePointer<Float>!
    /// [biased EMA of m, number of updates]: the bias-corrected running mean patch norm for evaluation.
    private var runningMean: UnsafeMutablePointer<Float>!
    private var meanPatchNorm: Float = 1
    /// rho per output channel in the last forward pass: tests compare it with a reference.
    var radii: [Float] { (0..<outChannels).map { rho[$0] } }
    private var reduction: UnsafeMutablePointer<Float>!

    public init(
        _ name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1,
        padding: Int = 0, operator op: DecoupledOperator, algorithm: ConvolutionAlgorithm = .standard,
        precision: Precision = .fp32
    ) {
        self.name = name; self.op = op; self.algorithm = algorithm; self.precision = precision
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        weight = Parameter(
            "\(name).weight", dims: [outChannels, inChannels, kernel, kernel],
            role: .decoupledFilter, initializer: .heNormal)
        if op.usesRadius, case .learnable = op.radius {
            radiusParameter = Parameter(
                "\(name).radius", dims: [outChannels], role: .radius,
                initializer: .constant(1))
        } else {
            radiusParameter = nil
        }
        if op.angular.usesSharpness && op.learnableSharpness {
            sharpnessParameter = Parameter(
                "\(name).sharpness", dims: [outChannels], role: .angularSharpness,
                initializer: .constant(op.sharpness - DecoupledOperator.sharpnessOffset))
        } else {
            sharpnessParameter = nil
        }
    }

    public var parameters: [Parameter] { [weight] + [radiusParameter, sharpnessParameter].compactMap { $0 } }
    public var state: [StateBuffer] {
        guard op.usesRadius, op.radius.decay != nil else { return [] }
        return [StateBuffer(name: "\(name).running_patch_norm", data: runningMean, count: 2)]
    }

    public func build(input: Shape, arena: Arena) -> Shape {
        alwaysPrecondition(input.c == inChannels, "\(name): expects \(inChannels) channels, got \(input)")
        let g = ConvGeometry(
            channels: inChannels, height: input.h, width: input.w,
            kernel: kernel, stride: stride, padding: padding)
        let N = input.n
        engine = ConvolutionEngine(
            geometry: g, outChannels: outChannels, batch: N,
            algorithm: algorithm, precision: precision, arena: arena)
        let K = outChannels, P = g.positions
        let out = Shape(n: N, c: K, h: g.outHeight, w: g.outWidth)
        filterHat = arena.floats(K * g.patchSize); filterHatGradient = arena.floats(K * g.patchSize)
        filterNorm = arena.floats(K); rho = arena.floats(K); sharpness = arena.floats(K)
        dWn = arena.floats(K); dRho = arena.floats(K); dK = arena.floats(K)
        response = arena.tensor(out); output = arena.tensor(out); inputGradient = arena.tensor(input)
        patchNorm = arena.floats(N * P); invPatchNorm = arena.floats(N * P)
        patchNormGradient = arena.floats(N * P)
        squareMap = arena.floats(input.h * input.w); scratch = arena.floats(max(3 * P, input.h * input.w))
        runningMean = arena.floats(2); reduction = arena.floats(2)
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        input = x; lastMode = mode
        let g = engine.geometry, K = outChannels, P = g.positions, CRS = g.patchSize, N = x.shape.n
        for k in 0..<K {
            let w = weight.value + k * CRS
            let norm = (dotFloats(w, w, CRS) + Self.normEpsilon).squareRoot()
            filterNorm[k] = norm
            let inv = 1 / norm
            for i in 0..<CRS { filterHat[k * CRS + i] = w[i] * inv }
        }
        // The radius needs every patch norm of the batch, so they come first; then the operator
        // runs on each chunk of responses while the convolution has just left it in cache.
        for n in 0..<N {
            computePatchNorms(image: x.sample(n), into: patchNorm + n * P, inverse: invPatchNorm + n * P)
        }
        updateRadius(images: N, mode: mode)
        for k in 0..<K {
            sharpness[k] =
                sharpnessParameter.map { abs($0.value[k]) + DecoupledOperator.sharpnessOffset } ?? op.sharpness
        }
        let u = response.prefix(samples: N), y = output.prefix(samples: N)
        let clamp = precision.roundsOperands
        engine.forward(samples: N, filters: filterHat, input: x, output: u) { images in
            for n in images {
                if clamp { clampResponses(u.sample(n), norms: patchNorm + n * P, channels: K, positions: P) }
                op.forward(
                    u: u.sample(n), xn: patchNorm + n * P, invXn: invPatchNorm + n * P,
                    wn: filterNorm, rho: rho, sharpness: sharpness, out: y.sample(n),
                    channels: K, positions: P)
            }
        }
        return y
    }

    /// u and ||x|| of the last forward, for tests.
    func responseForTesting(n: Int, k: Int, p: Int) -> Float {
        let P = engine.positions
        return response.sample(n)[k * P + p]
    }
    func patchNormForTesting(n: Int, p: Int) -> Float { patchNorm[n * engine.positions + p] }

    /// u = min(max(u, −||x||), ||x||): |<w/||w||, x>| ≤ ||x|| holds exactly, and only rounding
    /// (of bf16 operands) breaks it.
    private func clampResponses(
        _ u: UnsafeMutablePointer<Float>, norms: UnsafePointer<Float>, channels K: Int, positions P: Int
    ) {
        for k in 0..<K {
            let row = u + k * P
            for p in 0..<P { row[p] = min(max(row[p], -norms[p]), norms[p]) }
        }
    }

    private func computePatchNorms(
        image: UnsafePointer<Float>, into xn: UnsafeMutablePointer<Float>,
        inverse: UnsafeMutablePointer<Float>
    ) {
        let g = engine.geometry, HW = g.height * g.width
        squareMap.update(repeating: 0, count: HW)
        for c in 0..<g.channels {
            let plane = image + c * HW
            for i in 0..<HW { squareMap[i] += plane[i] * plane[i] }
        }
        windowSum(g, map: squareMap, out: xn)
        for p in 0..<g.positions {
            let v = (xn[p] + Self.normEpsilon).squareRoot()
            xn[p] = v
            inverse[p] = 1 / v
        }
    }

    /// The mean operator radius over the output channels and the mean patch norm m it is built from,
    /// as evaluation would use them (the running mean); nil for operators without a radius.
    public var radiusStatistics: (radius: Double, patchNorm: Double)? {
        guard op.usesRadius else { return nil }
        let m: Float
        switch op.radius {
        case .fixed(let value): return (Double(value), Double.nan)
        case .learnable(let decay), .relative(let decay):
            let steps = runningMean[1]
            guard steps > 0 else { return nil }
            m = runningMean[0] / (1 - Foundation.pow(decay, steps))
        }
        var sum: Float = 0
        for k in 0..<outChannels {
            let r = radiusParameter?.value[k] ?? 1
            sum += (r * r + Self.radiusFloor) * m
        }
        return (Double(sum / Float(outChannels)), Double(m))
    }

    /// rho for this pass. In training, m is the batch mean patch norm (over replicas when a reducer
    /// is set) and feeds the running average; evaluation uses the bias-corrected running average.
    private func updateRadius(images N: Int, mode: Mode) {
        let K = outChannels, P = engine.positions
        switch op.radius {
        case .fixed(let value):
            for k in 0..<K { rho[k] = value }
            return
        case .learnable(let decay), .relative(let decay):
            guard op.usesRadius else { return }
            let steps = runningMean[1]
            if mode == .training || steps == 0 {
                reduction[0] = sumFloats(patchNorm, N * P)
                reduction[1] = Float(N * P)
                if mode == .training, let r = statisticsReducer {
                    r.sum(UnsafeMutableBufferPointer(start: reduction, count: 2))
                }
                meanPatchNorm = reduction[0] / reduction[1]
                if mode == .training {
                    runningMean[0] = decay * runningMean[0] + (1 - decay) * meanPatchNorm
                    runningMean[1] = steps + 1
                }
            } else {
                meanPatchNorm = runningMean[0] / (1 - Foundation.pow(decay, steps))
            }
            for k in 0..<K {
                let r = radiusParameter?.value[k] ?? 1
                rho[k] = (r * r + Self.radiusFloor) * meanPatchNorm
            }
        }
    }

    public func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
        let x = input!, g = engine.geometry, K = outChannels, P = g.positions, CRS = g.patchSize
        let N = x.shape.n, HW = g.height * g.width
        for k in 0..<K { dWn[k] = 0; dRho[k] = 0; dK[k] = 0 }
        patchNormGradient.update(repeating: 0, count: N * P)
        let u = response.prefix(samples: N)
        for n in 0..<N {
            op.backward(
                dy: dy.sample(n), u: u.sample(n), xn: patchNorm + n * P, invXn: invPatchNorm + n * P,
                wn: filterNorm, rho: rho, sharpness: sharpness, dXn: patchNormGradient + n * P,
                dWn: dWn, dRho: dRho, dK: dK, scratch: scratch, channels: K, positions: P)
        }
        radiusBackward(samples: N, needParameterGradients: needParameterGradients)
        if needParameterGradients, let sp = sharpnessParameter {
            for k in 0..<K { sp.gradient[k] = sp.value[k] >= 0 ? dK[k] : -dK[k] }
        }
        // u now holds dL/du.
        let dx = inputGradient.prefix(samples: N)
        engine.backward(
            samples: N, filters: filterHat, input: x, outGradient: u,
            filterGradient: needParameterGradients ? filterHatGradient : nil,
            inputGradient: needInputGradient ? dx : nil
        ) { n in
            // ||x|| = sqrt(S + eps): dL/dS = dL/d||x|| / (2||x||); S = window sum of Σ_c x².
            let image = x.sample(n), dxn = dx.sample(n)
            let dXn = patchNormGradient + n * P, inv = invPatchNorm + n * P
            for p in 0..<P { scratch[p] = 0.5 * dXn[p] * inv[p] }
            windowSumAdjoint(g, gradient: scratch, map: squareMap)
            for c in 0..<g.channels {
                let plane = image + c * HW, out = dxn + c * HW
                for i in 0..<HW { out[i] += 2 * plane[i] * squareMap[i] }
            }
        }
        guard needParameterGradients else { return needInputGradient ? dx : nil }
        // w_hat = w/||w||: dL/dw = (dL/dw_hat − w_hat·<w_hat, dL/dw_hat>)/||w|| + dL/d||w||·w_hat.
        for k in 0..<K {
            let wh = filterHat + k * CRS, gh = filterHatGradient + k * CRS, out = weight.gradient + k * CRS
            let proj = dotFloats(wh, gh, CRS), inv = 1 / filterNorm[k], dn = dWn[k]
            for i in 0..<CRS { out[i] = (gh[i] - wh[i] * proj) * inv + dn * wh[i] }
        }
        return needInputGradient ? dx : nil
    }

    /// rho_c = (r_c² + floor)·m: gradients to r, and (in training, where m is the batch mean) to every
    /// patch norm through m.
    private func radiusBackward(samples N: Int, needParameterGradients: Bool) {
        guard op.usesRadius, op.radius.decay != nil else { return }
        let K = outChannels, P = engine.positions
        var dm: Float = 0
        for k in 0..<K {
            let r = radiusParameter?.value[k] ?? 1
            dm += dRho[k] * (r * r + Self.radiusFloor)
            if needParameterGradients, let rp = radiusParameter { rp.gradient[k] = dRho[k] * 2 * r * meanPatchNorm }
        }
        guard lastMode == .training || runningMean[1] == 0 else { return }
        // m is a mean over every replica's patches: each replica adds the sum of all replicas'
        // dL/dm (the later gradient average divides by the replica count).
        var count = Float(N * P)
        if lastMode == .training, let r = statisticsReducer {
            reduction[0] = dm
            r.sum(UnsafeMutableBufferPointer(start: reduction, count: 1))
            dm = reduction[0]
            count *= Float(r.replicas)
        }
        let share = dm / count
        for i in 0..<(N * P) { patchNormGradient[i] += share }
    }
}
