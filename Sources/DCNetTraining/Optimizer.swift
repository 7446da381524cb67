import BLAS
import DCNetLayers
import DCNetModels
import DCNetTensor
import Foundation

/// Learning rate at a global step: linear warm-up from peak/warmup to the peak, then the schedule.
public struct LearningRateSchedule: Sendable {
    public let peak: Float, kind: ScheduleKind
    public let warmupSteps: Int, totalSteps: Int, stepsPerEpoch: Int
    /// Global steps from which the step schedule has multiplied the rate by one more `gamma`.
    public let milestoneSteps: [Int], gamma: Float

    /// `milestones` are epochs; `milestoneFractions`, when given, are fractions of `totalSteps` instead.
    public init(
        peak: Float, kind: ScheduleKind, warmupSteps: Int, totalSteps: Int, stepsPerEpoch: Int,
        milestones: [Int], milestoneFractions: [Double]? = nil, gamma: Float
    ) {
        self.peak = peak; self.kind = kind; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
        self.stepsPerEpoch = stepsPerEpoch; self.gamma = gamma
        if let milestoneFractions {
            milestoneSteps = milestoneFractions.map { Int(($0 * Double(totalSteps)).rounded()) }
        } else {
            milestoneSteps = milestones.map { $0 * max(stepsPerEpoch, 1) }
        }
    }

    /// The schedule of a configuration (warm-up epochs become steps).
    public init(config: TrainingConfig, stepsPerEpoch: Int) {
        self.init(
            peak: config.peakLearningRate, kind: config.schedule,
            warmupSteps: Int((config.warmupEpochs * Double(stepsPerEpoch)).rounded()),
            totalSteps: config.epochs * stepsPerEpoch, stepsPerEpoch: stepsPerEpoch,
            milestones: config.stepMilestones, milestoneFractions: config.stepMilestoneFractions,
            gamma: config.stepGamma)
    }

    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        switch kind {
        case .constant: return peak
        case .cosine:
            let span = max(totalSteps - warmupSteps, 1)
            let t = Double(min(step + 1 - warmupSteps, span)) / Double(span)
            return peak * Float(0.5 * (1 + cos(Double.pi * t)))
        case .step:
            let passed = milestoneSteps.filter { step >= $0 }.count
            return peak * Float(pow(Double(gamma), Double(passed)))
        }
    }
}

/// SGD with (Nesterov) momentum or Adam over the network's flat parameter buffer, with per-role
/// weight decay, optional global-norm clipping, weight projection and the orthogonality regulariser.
public final class Optimizer {
    public let config: TrainingConfig
    let network: Network
    /// Per parameter: (flat range, weight decay applies).
    let groups: [(range: Range<Int>, decay: Bool)]
    /// SGD momentum, or Adam's first moment.
    public let firstMoment: UnsafeMutablePointer<Float>
    /// Adam's second moment (unused by SGD).
    public let secondMoment: UnsafeMutablePointer<Float>
    public var adamSteps: Int = 0
    private let decoupledLayers: [DecoupledConv2D]
    /// Workspaces of the orthogonality regulariser: Ŵ Ŵᵀ, Ŵ and dŴ of the largest layer.
    private let gram: UnsafeMutablePointer<Float>, filterHat: UnsafeMutablePointer<Float>
    private let filterHatGradient: UnsafeMutablePointer<Float>, filterNorms: UnsafeMutablePointer<Float>

    public init(config: TrainingConfig, network: Network) {
        self.config = config
        self.network = network
        var offset = 0
        var g: [(Range<Int>, Bool)] = []
        for p in network.parameters {
            let decays: Bool
            switch p.role {
            case .decoupledFilter: decays = config.decayDecoupledFilters
            case .radius, .angularSharpness: decays = false
            default: decays = true
            }
            g.append((offset..<(offset + p.count), decays))
            offset += p.count
        }
        groups = g
        firstMoment = network.arena.floats(network.parameterCount)
        secondMoment = network.arena.floats(config.optimizer == .adam ? network.parameterCount : 1)
        decoupledLayers = network.allLayers.compactMap { $0 as? DecoupledConv2D }
        let maxK = decoupledLayers.map(\.outChannels).max() ?? 1
        let maxW = decoupledLayers.map { $0.weight.count }.max() ?? 1
        gram = network.arena.floats(maxK * maxK)
        filterHat = network.arena.floats(maxW)
        filterHatGradient = network.arena.floats(maxW)
        filterNorms = network.arena.floats(maxK)
    }

    /// Named optimizer state for checkpoints.
    public var stateBuffers: [(name: String, data: UnsafeMutablePointer<Float>, count: Int)] {
        var out: [(String, UnsafeMutablePointer<Float>, Int)] = []
        for (p, g) in zip(network.parameters, groups) {
            out.append(("optimizer.moment1/\(p.name)", firstMoment + g.range.lowerBound, p.count))
            if config.optimizer == .adam {
                out.append(("optimizer.moment2/\(p.name)", secondMoment + g.range.lowerBound, p.count))
            }
        }
        return out
    }

    /// Applies one update with learning rate `lr` using the (already averaged) gradients.
    /// Returns the global gradient norm before clipping.
    @discardableResult
    public func step(learningRate lr: Float, globalStep: Int) -> Float {
        let w = network.values, grad = network.gradients
        if config.orthogonality > 0 { addOrthogonalityGradient() }
        // Before the norm: clipping and the logged norm then see the gradient the update uses.
        if config.weightedGradients == true { weightFilterGradients() }
        let norm = dotFloats(grad, grad, network.parameterCount).squareRoot()
        if let clip = config.gradientClipNorm, norm > clip {
            BLAS.sscal(count: network.parameterCount, alpha: clip / norm, x: grad)
        }
        switch config.optimizer {
        case .sgd:
            let mu = config.momentum, nesterov = config.nesterov
            for (range, decays) in groups {
                let wd = decays ? config.weightDecay : 0
                for i in range {
                    let g = grad[i] + wd * w[i]
                    let buf = mu * firstMoment[i] + g
                    firstMoment[i] = buf
                    w[i] -= lr * (nesterov ? g + mu * buf : buf)
                }
            }
        case .adam:
            adamSteps += 1
            let b1 = config.adamBetas[0], b2 = config.adamBetas[1], eps = config.adamEpsilon
            let c1 = 1 - Float(pow(Double(b1), Double(adamSteps)))
            let c2 = 1 - Float(pow(Double(b2), Double(adamSteps)))
            for (range, decays) in groups {
                let wd = decays ? config.weightDecay : 0
                for i in range {
                    let g = grad[i] + wd * w[i]
                    firstMoment[i] = b1 * firstMoment[i] + (1 - b1) * g
                    secondMoment[i] = b2 * secondMoment[i] + (1 - b2) * g * g
                    w[i] -= lr * (firstMoment[i] / c1) / ((secondMoment[i] / c2).squareRoot() + eps)
                }
            }
        }
        if config.projectEvery > 0 && (globalStep + 1) % config.projectEvery == 0 { projectFilters() }
        return norm
    }

    /// Rescales every decoupled filter to unit norm. The operators see only w/||w||, so this changes
    /// nothing in the forward pass; it keeps the effective step size from shrinking as ||w|| grows.
    public func projectFilters() {
        for layer in decoupledLayers {
            let K = layer.outChannels, n = layer.weight.count / K
            for k in 0..<K {
                let row = layer.weight.value + k * n
                let norm = dotFloats(row, row, n).squareRoot()
                if norm > 0 { BLAS.sscal(count: n, alpha: 1 / norm, x: row) }
            }
        }
    }

    /// Multiplies the gradient of each decoupled filter (one row of its layer's [out, in·k·k] weight)
    /// by the filter's norm. The operators see ŵ = w/||w||, so dL/dw = (I − ŵŵᵀ)·dL/dŵ / ||w||: the
    /// step on a filter shrinks as it grows. Scaling by ||w|| (the same ε as the forward pass, so the
    /// factors cancel exactly) makes the update independent of the filter's scale. Runs after the
    /// all-reduce, so every replica scales by the same norms.
    func weightFilterGradients() {
        for layer in decoupledLayers {
            let K = layer.outChannels, n = layer.weight.count / K
            let w = layer.weight.value!, dw = layer.weight.gradient!
            for k in 0..<K {
                let row = w + k * n
                let norm = (dotFloats(row, row, n) + DecoupledConv2D.normEpsilon).squareRoot()
                BLAS.sscal(count: n, alpha: norm, x: dw + k * n)
            }
        }
    }

    /// Adds the gradient of lambda/2·||Ŵ Ŵᵀ − I||²_F (Ŵ: rows are unit-normalised filters).
    private func addOrthogonalityGradient() {
        let lambda = config.orthogonality
        for layer in decoupledLayers {
            let K = layer.outChannels, n = layer.weight.count / K
            let w = layer.weight.value!, dw = layer.weight.gradient!
            let hat = filterHat, norms = filterNorms, dHat = filterHatGradient
            for k in 0..<K {
                let row = w + k * n
                norms[k] = (dotFloats(row, row, n) + DecoupledConv2D.normEpsilon).squareRoot()
                for i in 0..<n { hat[k * n + i] = row[i] / norms[k] }
            }
            BLAS.sgemm(.none, .transpose, m: K, n: K, k: n, a: hat, b: hat, c: gram)
            for k in 0..<K { gram[k * K + k] -= 1 }
            // dŴ = 2·lambda·(G − I)·Ŵ, then through Ŵ = w/||w||.
            BLAS.sgemm(.none, .none, m: K, n: n, k: K, alpha: 2 * lambda, a: gram, b: hat, c: dHat)
            for k in 0..<K {
                let h = hat + k * n, d = dHat + k * n
                let proj = dotFloats(h, d, n)
                for i in 0..<n { dw[k * n + i] += (d[i] - h[i] * proj) / norms[k] }
            }
        }
    }
}
