import BLAS
import DCNetData
import DCNetLayers
import DCNetMetrics
import DCNetModels
import DCNetTensor
import DCNetTraining
import Foundation
import MPI

// Gradient-based L∞ adversarial attacks (FGSM, BIM, PGD) on networks in evaluation mode: crafted once
// on one network and evaluated on it (white-box) and on any number of other networks (black-box
// transfer), so the crafting (tens of gradient passes per image for BIM/PGD) is paid once.
//
// Units. Attacks live in the space of raw pixels 0…255 per channel: the L∞ budget ε is given in
// pixel levels (`--epsilon 8` = 8 of 255 levels) and every adversarial image stays inside [0, 255].
// Networks see scaled inputs x = a_c·pixel + b_c (see `PixelMap`), so in model units the budget
// is ε·a_c per channel: 8/128 for the authors' scaling, 8/(255·std_c) for per-channel mean/std.
// Adversarial images are not rounded to whole pixel levels.

/// The affine per-channel map from raw pixels (0…255) to model inputs: x = scale[c]·pixel + offset[c].
public struct PixelMap: Sendable, Equatable {
    /// Model units per pixel level.
    public var scale: [Float]
    /// Model value of pixel 0.
    public var offset: [Float]

    public init(_ scaling: Scaling) {
        switch scaling {
        case .authors:
            scale = [Float](repeating: 1 / 128, count: 3)
            offset = [Float](repeating: -127.5 / 128, count: 3)
        case let .meanStd(mean, std):
            scale = (0..<3).map { 1 / (255 * std[$0]) }
            offset = (0..<3).map { -mean[$0] / std[$0] }
        }
    }
    /// Model value of pixel 0 / 255 in channel c: the valid input box.
    public func lower(_ c: Int) -> Float { offset[c] }
    public func upper(_ c: Int) -> Float { offset[c] + 255 * scale[c] }
    public func toPixels(_ x: Float, channel c: Int) -> Float { (x - offset[c]) / scale[c] }
    public func toModel(_ pixel: Float, channel c: Int) -> Float { offset[c] + scale[c] * pixel }
}

public enum AttackMethod: String, Sendable, CaseIterable, Codable {
    /// Fast gradient sign method (Goodfellow et al., 2015): one step x + ε·sign(∇ₓL).
    case fgsm
    /// Basic iterative method (Kurakin et al., 2017): S signed steps of size α from x, each
    /// projected back onto the ε-ball and the valid pixel range.
    case bim
    /// Projected gradient descent (Madry et al., 2018): BIM from a uniformly random start in the ε-ball.
    case pgd
}

public enum EpsilonUnits: String, Sendable, CaseIterable, Codable {
    /// Pixel levels of the 0…255 range (the same for every channel).
    case pixels
    /// Model (scaled-input) units, the same for every channel.
    case model
}

/// One attack setting, resolved for a network's input scaling.
public struct AttackSettings: Sendable, Equatable {
    public var method: AttackMethod
    /// Steps actually taken (1 for FGSM).
    public var steps: Int
    /// L∞ budget per channel, in model units of the crafting network.
    public var epsilon: [Float]
    /// Step size per channel, in model units (= epsilon for FGSM).
    public var stepSize: [Float]
    /// ε in pixel levels for reports (for `--epsilon-units model` with per-channel scaling, the
    /// mean over channels).
    public var epsilonPixels: Double
    public var stepSizePixels: Double
    public var seed: UInt64

    /// - Parameters:
    ///   - epsilon: the budget in `units`.
    ///   - stepSize: in `units`; nil = the default: ε/S for BIM, 2.5·ε/S for PGD (Madry et al.).
    public init(
        method: AttackMethod, epsilon: Double, units: EpsilonUnits = .pixels, steps: Int = 10,
        stepSize: Double? = nil, scaling: Scaling, seed: UInt64 = 0
    ) {
        let map = PixelMap(scaling)
        self.method = method
        self.steps = method == .fgsm ? 1 : max(1, steps)
        self.seed = seed
        let defaultStep: Double
        switch method {
        case .fgsm: defaultStep = epsilon
        case .bim: defaultStep = epsilon / Double(self.steps)
        case .pgd: defaultStep = 2.5 * epsilon / Double(self.steps)
        }
        let alpha = method == .fgsm ? epsilon : (stepSize ?? defaultStep)
        switch units {
        case .pixels:
            self.epsilon = map.scale.map { Float(epsilon) * $0 }
            self.stepSize = map.scale.map { Float(alpha) * $0 }
            epsilonPixels = epsilon
            stepSizePixels = alpha
        case .model:
            self.epsilon = [Float](repeating: Float(epsilon), count: 3)
            self.stepSize = [Float](repeating: Float(alpha), count: 3)
            epsilonPixels = map.scale.map { epsilon / Double($0) }.reduce(0, +) / 3
            stepSizePixels = map.scale.map { alpha / Double($0) }.reduce(0, +) / 3
        }
    }

    /// The same attack budget expressed for a network with another scaling (pixel units are the
    /// common currency).
    public func converted(from source: Scaling, to target: Scaling) -> AttackSettings {
        let a = PixelMap(source), b = PixelMap(target)
        var s = self
        s.epsilon = (0..<3).map { epsilon[$0] / a.scale[$0] * b.scale[$0] }
        s.stepSize = (0..<3).map { stepSize[$0] / a.scale[$0] * b.scale[$0] }
        return s
    }
}

/// The gradient of the mean cross-entropy with respect to the input, in evaluation mode (BatchNorm
/// running statistics, decoupled layers' running mean patch norm), from the same backward code the
/// trainer uses. Returns the network's input-gradient buffer (valid until the next backward).
/// Parameter gradients are not computed (the filter-gradient products are a third of the work of a
/// convolution) and keep their values.
public func inputGradient(network: Network, input: Tensor, labels: UnsafePointer<Int32>)
    -> (gradient: Tensor, loss: Float, correct: Int)
{
    let logits = network.forward(input, mode: .evaluation)
    let (loss, correct) = network.loss.forward(logits: logits, labels: labels)
    let g = network.backward(
        network.loss.backward(), inputGradient: true, parameterGradients: false, layerDone: { _ in })!
    return (g, loss, correct)
}

/// Crafts adversarial examples on one network.
public final class Adversary {
    public let network: Network
    public let scaling: Scaling
    public let map: PixelMap

    public init(network: Network, scaling: Scaling) {
        self.network = network; self.scaling = scaling; map = PixelMap(scaling)
    }

    /// Writes adversarial versions of the first `n = clean.shape.n` images of `clean` into `adversarial`
    /// (both in this network's model units). `firstIndex` is the dataset index of sample 0: PGD's
    /// random start for an image depends only on (seed, its dataset index), not on the rank layout.
    public func craft(
        clean: Tensor, labels: UnsafePointer<Int32>, settings s: AttackSettings,
        firstIndex: Int, into adversarial: Tensor
    ) {
        let n = clean.shape.n, plane = clean.shape.spatial, C = clean.shape.c
        precondition(C == 3 && adversarial.shape.perSample == clean.shape.perSample && adversarial.shape.n >= n)
        let adv = adversarial.prefix(samples: n)
        adv.copy(from: clean)
        // Valid box ∩ ε-ball, per element.
        func project(_ c: Int, _ v: Float, _ x0: Float) -> Float {
            let lo = max(map.lower(c), x0 - s.epsilon[c]), hi = min(map.upper(c), x0 + s.epsilon[c])
            return min(max(v, lo), hi)
        }
        if s.method == .pgd {
            for k in 0..<n {
                var rng = Xoshiro256StarStar(
                    seed: SplitMix64.hash(s.seed, UInt64(firstIndex + k), 0x5047_44 /* "PGD" */))
                let x0 = clean.sample(k), x = adv.sample(k)
                for c in 0..<C {
                    for i in c * plane..<(c + 1) * plane {
                        let u = 2 * rng.nextFloat() - 1
                        x[i] = project(c, x0[i] + u * s.epsilon[c], x0[i])
                    }
                }
            }
        }
        for _ in 0..<s.steps {
            let g = inputGradient(network: network, input: adv, labels: labels).gradient
            for k in 0..<n {
                let x0 = clean.sample(k), x = adv.sample(k), gk = g.sample(k)
                for c in 0..<C {
                    let a = s.stepSize[c]
                    for i in c * plane..<(c + 1) * plane {
                        let d = gk[i] > 0 ? a : (gk[i] < 0 ? -a : 0)
                        x[i] = project(c, x[i] + d, x0[i])
                    }
                }
            }
        }
    }
}

/// Result of one attack setting over a data set (summed over ranks).
public struct AttackResult: Sendable {
    public var settings: AttackSettings
    public var images: Int
    public var cleanAccuracy: Double
    public var adversarialAccuracy: Double
    /// Largest |adversarial − clean| over all images, in pixel levels (≤ ε up to rounding).
    public var maxPerturbationPixels: Double
    /// Smallest and largest adversarial pixel value (within [0, 255] up to rounding).
    public var minPixel: Double, maxPixel: Double
}

/// The results of one attack setting: on the crafting network itself (white-box) and on each
/// transfer target (black-box), each with the clean accuracy of the network it was evaluated on.
public struct AttackOutcome: Sendable {
    /// In the crafting network's units.
    public var settings: AttackSettings
    /// On the crafting network; nil unless the evaluation was asked to include it.
    public var whiteBox: AttackResult?
    /// One per transfer target, in the order the targets were given.
    public var transfers: [AttackResult]
}

/// Crafts adversarial examples on one network and evaluates them on that network (white-box,
/// optional) and on a list of transfer targets (black-box), over `DataOrder.evaluationShard` of
/// each rank with sums all-reduced. Each image is crafted once per setting for all of them.
///
/// Pixel values are the common currency: a transfer target sees the adversarial images converted
/// from the crafting network's model units to pixels and then to its own model units (even when
/// its scaling is the same), the white-box evaluation sees them as crafted. With one transfer
/// target and no white-box evaluation this is the single-source black-box attack; with no targets,
/// the white-box attack.
public final class AdversarialEvaluation {
    public let adversary: Adversary
    public let whiteBox: Bool
    public let transferTargets: [(network: Network, scaling: Scaling)]
    public let communicator: Communicator?
    private let clean: Tensor, adversarial: Tensor
    /// Per transfer target: its input batch (in its arena) and pixel map.
    private let transferInputs: [Tensor], transferMaps: [PixelMap]
    private let labels: UnsafeMutablePointer<Int32>

    /// All networks must be built for the same batch size; a target may be the crafting network itself.
    public init(
        crafting network: Network, scaling: Scaling, whiteBox: Bool = true,
        transferTargets: [(network: Network, scaling: Scaling)] = [], communicator: Communicator?
    ) {
        precondition(whiteBox || !transferTargets.isEmpty, "an attack evaluated on no network")
        for t in transferTargets {
            precondition(
                t.network.inputShape == network.inputShape,
                "the crafting network and the transfer targets must be built for the same batch")
        }
        adversary = Adversary(network: network, scaling: scaling)
        self.whiteBox = whiteBox
        self.transferTargets = transferTargets
        self.communicator = communicator
        clean = network.arena.tensor(network.inputShape)
        adversarial = network.arena.tensor(network.inputShape)
        transferInputs = transferTargets.map { $0.network.arena.tensor($0.network.inputShape) }
        transferMaps = transferTargets.map { PixelMap($0.scaling) }
        labels = .allocate(capacity: network.inputShape.n)
    }
    deinit { labels.deallocate() }

    /// Images of `input` the network classifies correctly (labels: the current batch's).
    private func correct(_ network: Network, _ input: Tensor) -> Int {
        network.loss.forward(logits: network.forward(input, mode: .evaluation), labels: labels).correct
    }

    /// Settings are given in the crafting network's units. Returns one outcome per setting.
    public func run(dataset: LabeledImages, settings: [AttackSettings]) throws -> [AttackOutcome] {
        let rank = communicator?.rank ?? 0, size = communicator?.size ?? 1
        let shard = DataOrder.evaluationShard(count: dataset.count, rank: rank, size: size)
        let network = adversary.network, capacity = network.inputShape.n
        let sMap = adversary.map
        let plane = network.inputShape.spatial
        // Models, in this order: the crafting network (if white-box), then the transfer targets.
        let firstTransfer = whiteBox ? 1 : 0, models = firstTransfer + transferTargets.count
        // sums: [images, clean correct per model, then per setting adversarial correct per model];
        // maxima: [max pert, max pixel, -min pixel] per setting (of the crafted images: one for all models).
        var sums = [Double](repeating: 0, count: 1 + models * (1 + settings.count))
        var maxima = [Double](repeating: -.infinity, count: 3 * settings.count)
        var start = shard.lowerBound
        while start < shard.upperBound {
            let end = min(start + capacity, shard.upperBound), n = end - start
            let x0 = clean.prefix(samples: n), adv = adversarial.prefix(samples: n)
            sums[0] += Double(n)
            for m in transferTargets.indices {
                fillBatch(
                    images: dataset, indices: start..<end, epoch: 0, seed: 0, augment: false,
                    scaling: transferTargets[m].scaling, into: transferInputs[m].data, labels: labels)
                sums[1 + firstTransfer + m] += Double(
                    correct(transferTargets[m].network, transferInputs[m].prefix(samples: n)))
            }
            fillBatch(
                images: dataset, indices: start..<end, epoch: 0, seed: 0, augment: false,
                scaling: adversary.scaling, into: clean.data, labels: labels)
            if whiteBox { sums[1] += Double(correct(network, x0)) }
            for (j, s) in settings.enumerated() {
                adversary.craft(clean: x0, labels: labels, settings: s, firstIndex: start, into: adv)
                var maxPert = 0.0, maxPixel = -Double.infinity, minPixel = Double.infinity
                for k in 0..<n {
                    let a = adv.sample(k), b = x0.sample(k)
                    for c in 0..<3 {
                        for i in c * plane..<(c + 1) * plane {
                            let p = sMap.toPixels(a[i], channel: c)
                            maxPert = max(maxPert, Double(abs(p - sMap.toPixels(b[i], channel: c))))
                            maxPixel = max(maxPixel, Double(p)); minPixel = min(minPixel, Double(p))
                        }
                    }
                }
                let row = 1 + models * (1 + j)
                if whiteBox { sums[row] += Double(correct(network, adv)) }
                for m in transferTargets.indices {
                    let input = transferInputs[m], tMap = transferMaps[m]
                    for k in 0..<n {
                        let a = adv.sample(k), t = input.sample(k)
                        for c in 0..<3 {
                            for i in c * plane..<(c + 1) * plane {
                                t[i] = tMap.toModel(sMap.toPixels(a[i], channel: c), channel: c)
                            }
                        }
                    }
                    sums[row + firstTransfer + m] += Double(
                        correct(transferTargets[m].network, input.prefix(samples: n)))
                }
                maxima[3 * j] = max(maxima[3 * j], maxPert)
                maxima[3 * j + 1] = max(maxima[3 * j + 1], maxPixel)
                maxima[3 * j + 2] = max(maxima[3 * j + 2], -minPixel)
            }
            start = end
        }
        if let communicator {
            try communicator.allReduce(&sums, op: .sum)
            try communicator.allReduce(&maxima, op: .max)
        }
        let count = max(sums[0], 1)
        func result(_ j: Int, _ s: AttackSettings, model m: Int) -> AttackResult {
            AttackResult(
                settings: s, images: Int(sums[0]), cleanAccuracy: sums[1 + m] / count,
                adversarialAccuracy: sums[1 + models * (1 + j) + m] / count, maxPerturbationPixels: maxima[3 * j],
                minPixel: -maxima[3 * j + 2], maxPixel: maxima[3 * j + 1])
        }
        return settings.enumerated().map { j, s in
            AttackOutcome(
                settings: s, whiteBox: whiteBox ? result(j, s, model: 0) : nil,
                transfers: transferTargets.indices.map { result(j, s, model: firstTransfer + $0) })
        }
    }
}

extension AttackResult {
    /// The `attacks.jsonl` record of this result; `source` and `target` are run names.
    public func record(source: String?, target: String?, transfer: Bool) -> AttackRecord {
        AttackRecord(
            method: settings.method.rawValue, mode: transfer ? .blackBox : .whiteBox, source: source, target: target,
            epsilonPixels: settings.epsilonPixels, epsilonModel: settings.epsilon.map(Double.init),
            steps: settings.steps, stepSizePixels: settings.stepSizePixels, cleanAccuracy: cleanAccuracy,
            adversarialAccuracy: adversarialAccuracy, images: images, maxPerturbationPixels: maxPerturbationPixels,
            seed: settings.seed, date: ISO8601DateFormatter().string(from: Date()))
    }
}
