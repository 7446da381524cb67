import DCNetData
import DCNetLayers
import DCNetModels
import DCNetTensor
import Foundation
import XCTest

@testable import DCNetTraining

/// Learning-rate schedules and the optimizers against hand computations.
final class OptimizerTests: XCTestCase {
    // MARK: schedule

    func testWarmupThenCosine() {
        let peak: Float = 0.1
        let s = LearningRateSchedule(
            peak: peak, kind: .cosine, warmupSteps: 10, totalSteps: 100, stepsPerEpoch: 10,
            milestones: [], gamma: 0.1)
        XCTAssertEqual(s.rate(at: 0), peak / 10, accuracy: 1e-7, "first step: peak / warm-up steps")
        XCTAssertEqual(s.rate(at: 4), peak * 5 / 10, accuracy: 1e-7)
        XCTAssertEqual(s.rate(at: 9), peak, accuracy: 1e-7, "last warm-up step reaches the peak")
        for i in 0..<9 { XCTAssertLessThan(s.rate(at: i), s.rate(at: i + 1), "warm-up must increase at \(i)") }
        XCTAssertLessThanOrEqual(s.rate(at: 10), peak)
        XCTAssertGreaterThan(s.rate(at: 10), 0.99 * peak, "cosine starts at the peak")
        // Half-way through the cosine part the rate is half the peak.
        XCTAssertEqual(s.rate(at: 54), peak / 2, accuracy: 1e-6)
        for i in 10..<99 {
            XCTAssertGreaterThanOrEqual(s.rate(at: i), s.rate(at: i + 1), "cosine must not increase at \(i)")
        }
        XCTAssertLessThan(s.rate(at: 99), 1e-3 * peak, "last step ≈ 0")
        XCTAssertGreaterThanOrEqual(s.rate(at: 99), 0)
        XCTAssertGreaterThan(s.rate(at: 98), 0, "only the very end reaches 0")
    }

    func testStepAndConstantSchedules() {
        let step = LearningRateSchedule(
            peak: 1, kind: .step, warmupSteps: 0, totalSteps: 100, stepsPerEpoch: 10,
            milestones: [3, 6], gamma: 0.1)
        XCTAssertEqual(step.rate(at: 29), 1, accuracy: 1e-7)
        XCTAssertEqual(step.rate(at: 30), 0.1, accuracy: 1e-7)
        XCTAssertEqual(step.rate(at: 59), 0.1, accuracy: 1e-7)
        XCTAssertEqual(step.rate(at: 60), 0.01, accuracy: 1e-8)
        let constant = LearningRateSchedule(
            peak: 0.3, kind: .constant, warmupSteps: 3, totalSteps: 100, stepsPerEpoch: 10,
            milestones: [], gamma: 0.1)
        XCTAssertEqual(constant.rate(at: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(constant.rate(at: 2), 0.3, accuracy: 1e-7)
        XCTAssertEqual(constant.rate(at: 99), 0.3, accuracy: 1e-7)
    }

    /// The authors' schedule: ×0.1 at 20k, 30k and 37.5k of 42.5k iterations, i.e. at 47%, 71% and
    /// 88% of the steps, whatever the epoch count.
    func testStepMilestonesAsFractionsOfTheSteps() {
        let authors = LearningRateSchedule(
            peak: 1e-3, kind: .step, warmupSteps: 0, totalSteps: 42_500, stepsPerEpoch: 352,
            milestones: [], milestoneFractions: [20_000 / 42_500, 30_000 / 42_500, 37_500 / 42_500], gamma: 0.1)
        XCTAssertEqual(authors.milestoneSteps, [20_000, 30_000, 37_500])
        XCTAssertEqual(authors.rate(at: 19_999), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(authors.rate(at: 20_000), 1e-4, accuracy: 1e-10)
        XCTAssertEqual(authors.rate(at: 37_500), 1e-6, accuracy: 1e-12)
        // The recipe's rounded percentages at 30 epochs of 352 steps.
        let recipe = LearningRateSchedule(
            peak: 1e-3, kind: .step, warmupSteps: 0, totalSteps: 30 * 352, stepsPerEpoch: 352,
            milestones: [], milestoneFractions: [0.47, 0.71, 0.88], gamma: 0.1)
        XCTAssertEqual(recipe.milestoneSteps, [4963, 7498, 9293])
        XCTAssertEqual(recipe.rate(at: 4962), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(recipe.rate(at: 4963), 1e-4, accuracy: 1e-10)
        XCTAssertEqual(recipe.rate(at: 7498), 1e-5, accuracy: 1e-11)
        XCTAssertEqual(recipe.rate(at: 10_559), 1e-6, accuracy: 1e-12)
    }

    /// The trainer turns warm-up epochs and epochs into steps with its steps per epoch.
    func testTrainerScheduleInSteps() throws {
        let data = try learnableDataset(train: 60, test: 16)
        var config = tinyConfig(tinyModel(.baseline), batch: 16, lr: 0.2, epochs: 5)
        config.schedule = .cosine; config.warmupEpochs = 1.5
        let t = try Trainer(config: config, options: tinyOptions(data: data.path, maxSteps: 1))
        XCTAssertEqual(t.stepsPerEpoch, 4)  // 60 images, batch 16, wrap
        XCTAssertEqual(t.schedule.warmupSteps, 6)
        XCTAssertEqual(t.schedule.totalSteps, 20)
        XCTAssertEqual(t.schedule.rate(at: 0), 0.2 / 6, accuracy: 1e-7)
        XCTAssertEqual(t.schedule.rate(at: 5), 0.2, accuracy: 1e-7)
        XCTAssertLessThan(t.schedule.rate(at: 19), 1e-3 * 0.2)
    }

    // MARK: optimizers

    /// A linear classifier 3 → 2 (weight 6 values, bias 2): parameters at known values.
    private func linearNetwork() -> Network {
        Network(layers: [Linear("fc", inFeatures: 3, outFeatures: 2)], input: Shape(n: 1, c: 3), classes: 2)
    }
    private let w0: [Float] = [0.5, -1.25, 2, 0.75, -0.5, 1.5, 0.25, -2]
    private let grads: [[Float]] = [
        [0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8],
        [-0.3, 0.25, 0.1, 0.05, -0.15, 0.35, -0.45, 0.2],
    ]

    private func optimizer(_ configure: (inout TrainingConfig) -> Void) -> (Network, Optimizer) {
        let network = linearNetwork()
        var config = TrainingConfig(model: tinyModel())
        configure(&config)
        let opt = Optimizer(config: config, network: network)
        for i in 0..<8 { network.values[i] = w0[i] }
        return (network, opt)
    }

    func testSGDNesterovMatchesHandComputation() {
        let lr: Float = 0.1, mu: Float = 0.9, wd: Float = 0.01
        let (network, opt) = optimizer {
            $0.optimizer = .sgd; $0.momentum = mu; $0.nesterov = true; $0.weightDecay = wd
        }
        var w = w0.map(Double.init), buf = [Double](repeating: 0, count: 8)
        for (step, g) in grads.enumerated() {
            for i in 0..<8 { network.gradients[i] = g[i] }
            opt.step(learningRate: lr, globalStep: step)
            for i in 0..<8 {
                let d = Double(g[i]) + Double(wd) * w[i]
                buf[i] = Double(mu) * buf[i] + d
                w[i] -= Double(lr) * (d + Double(mu) * buf[i])
            }
            for i in 0..<8 {
                XCTAssertEqual(Double(network.values[i]), w[i], accuracy: 1e-6, "step \(step + 1) element \(i)")
                XCTAssertEqual(
                    Double(opt.firstMoment[i]), buf[i], accuracy: 1e-6, "momentum buffer, step \(step + 1) element \(i)"
                )
            }
        }
        // First element by hand: g=0.1+0.005=0.105, buf=0.105, w=0.5−0.1·(0.105+0.0945)=0.48005.
        let (n1, o1) = optimizer {
            $0.optimizer = .sgd; $0.momentum = mu; $0.nesterov = true; $0.weightDecay = wd
        }
        for i in 0..<8 { n1.gradients[i] = grads[0][i] }
        o1.step(learningRate: lr, globalStep: 0)
        XCTAssertEqual(n1.values[0], 0.48005, accuracy: 1e-6)
    }

    func testSGDPlainMomentum() {
        let (network, opt) = optimizer {
            $0.optimizer = .sgd; $0.momentum = 0.5; $0.nesterov = false; $0.weightDecay = 0
        }
        var w = w0.map(Double.init), buf = [Double](repeating: 0, count: 8)
        for (step, g) in grads.enumerated() {
            for i in 0..<8 { network.gradients[i] = g[i] }
            opt.step(learningRate: 0.2, globalStep: step)
            for i in 0..<8 {
                buf[i] = 0.5 * buf[i] + Double(g[i])
                w[i] -= 0.2 * buf[i]
                XCTAssertEqual(Double(network.values[i]), w[i], accuracy: 1e-6, "step \(step + 1) element \(i)")
            }
        }
    }

    func testAdamMatchesHandComputationForTwoSteps() {
        let lr: Float = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8
        let (network, opt) = optimizer {
            $0.optimizer = .adam; $0.weightDecay = 0; $0.adamBetas = [0.9, 0.999]; $0.adamEpsilon = 1e-8
        }
        var w = w0.map(Double.init), m = [Double](repeating: 0, count: 8), v = m
        for (step, g) in grads.enumerated() {
            for i in 0..<8 { network.gradients[i] = g[i] }
            opt.step(learningRate: lr, globalStep: step)
            let t = Double(step + 1)
            for i in 0..<8 {
                m[i] = b1 * m[i] + (1 - b1) * Double(g[i])
                v[i] = b2 * v[i] + (1 - b2) * Double(g[i]) * Double(g[i])
                let mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t))
                w[i] -= Double(lr) * mh / (vh.squareRoot() + eps)
                XCTAssertEqual(Double(network.values[i]), w[i], accuracy: 2e-6, "step \(step + 1) element \(i)")
            }
        }
        XCTAssertEqual(opt.adamSteps, 2)
        // Step 1 of Adam moves every weight by lr·sign(g) (bias-corrected m/sqrt(v) = ±1).
        let (n1, o1) = optimizer {
            $0.optimizer = .adam; $0.weightDecay = 0
        }
        for i in 0..<8 { n1.gradients[i] = grads[0][i] }
        o1.step(learningRate: lr, globalStep: 0)
        for i in 0..<8 {
            XCTAssertEqual(n1.values[i], w0[i] - lr * (grads[0][i] > 0 ? 1 : -1), accuracy: 1e-6)
        }
    }

    func testGradientClipping() {
        // Gradient (3, 4, 0, ...) has norm 5; clipping to 1 scales it to (0.6, 0.8, 0, ...).
        var g = [Float](repeating: 0, count: 8); g[0] = 3; g[1] = 4
        let (network, opt) = optimizer {
            $0.optimizer = .sgd; $0.momentum = 0; $0.weightDecay = 0; $0.gradientClipNorm = 1
        }
        for i in 0..<8 { network.gradients[i] = g[i] }
        let norm = opt.step(learningRate: 1, globalStep: 0)
        XCTAssertEqual(norm, 5, accuracy: 1e-6, "step returns the norm before clipping")
        XCTAssertEqual(network.values[0], w0[0] - 0.6, accuracy: 1e-6)
        XCTAssertEqual(network.values[1], w0[1] - 0.8, accuracy: 1e-6)
        for i in 2..<8 { XCTAssertEqual(network.values[i], w0[i]) }

        // Below the threshold nothing is scaled.
        let (n2, o2) = optimizer {
            $0.optimizer = .sgd; $0.momentum = 0; $0.weightDecay = 0; $0.gradientClipNorm = 10
        }
        for i in 0..<8 { n2.gradients[i] = g[i] }
        o2.step(learningRate: 1, globalStep: 0)
        XCTAssertEqual(n2.values[0], w0[0] - 3, accuracy: 1e-6)
        XCTAssertEqual(n2.values[1], w0[1] - 4, accuracy: 1e-6)
    }

    /// With zero gradients only weight decay moves parameters: decoupled filters and radii stay put
    /// (unless --decay-decoupled, which still spares radii), everything else shrinks by lr·wd.
    func testWeightDecayRoles() {
        for decayDecoupled in [false, true] {
            let network = tinyModel(tanhConv).makeNetwork(batch: 1)
            var rng = Xoshiro256StarStar(seed: 5)
            network.initializeParameters(using: &rng)
            // Distinct non-zero values everywhere (BN shifts start at 0, radii at 1).
            for i in 0..<network.parameterCount where network.values[i] == 0 { network.values[i] = 0.25 }
            var config = TrainingConfig(model: tinyModel(tanhConv))
            config.optimizer = .sgd; config.momentum = 0; config.weightDecay = 0.1
            config.decayDecoupledFilters = decayDecoupled
            let opt = Optimizer(config: config, network: network)
            network.gradientBuffer.update(repeating: 0)
            let before = network.parameters.map { Array($0.valueBuffer) }
            opt.step(learningRate: 0.5, globalStep: 0)
            var roles = Set<ParameterRole>()
            for (p, old) in zip(network.parameters, before) {
                roles.insert(p.role)
                let decays: Bool
                switch p.role {
                case .decoupledFilter: decays = decayDecoupled
                case .radius, .angularSharpness: decays = false
                default: decays = true
                }
                for i in 0..<p.count {
                    let expected = decays ? old[i] * (1 - 0.05) : old[i]
                    XCTAssertEqual(
                        p.value[i], expected, accuracy: 1e-6 * max(1, abs(old[i])),
                        "\(p.name) (\(p.role)) element \(i), decayDecoupled \(decayDecoupled)")
                }
            }
            XCTAssertTrue(
                roles.isSuperset(of: [.decoupledFilter, .radius, .batchNormScale, .linearWeight]),
                "the model should have every role under test, has \(roles)")
        }
    }

    // MARK: weighted gradients

    /// With --weighted-gradients the update of each decoupled filter (a row of its [out, in·k·k]
    /// weight) is the update without it times the filter's norm; every other parameter moves as
    /// without. Filters get different scales, so a missing or shared factor shows.
    func testWeightedGradientsScaleEachFilterUpdateByItsNorm() throws {
        let model = tinyModel(tanhConv)
        var updates: [[Float]] = []
        var network: Network!
        var filters = 0
        for weighted in [false, true] {
            network = model.makeNetwork(batch: 1)
            var rng = Xoshiro256StarStar(seed: 21)
            network.initializeParameters(using: &rng)
            for layer in network.allLayers.compactMap({ $0 as? DecoupledConv2D }) {
                let n = layer.weight.count / layer.outChannels
                for i in 0..<layer.weight.count { layer.weight.value[i] *= Float(1 + i / n) * 0.7 }
            }
            var config = TrainingConfig(model: model)
            // Nesterov momentum: its first step is lr·(1 + mu)·g, still linear in the gradient.
            config.optimizer = .sgd; config.momentum = 0.9; config.nesterov = true; config.weightDecay = 0
            config.weightedGradients = weighted
            let opt = Optimizer(config: config, network: network)
            let before = Array(network.valueBuffer)
            var g = Xoshiro256StarStar(seed: 22)
            for i in 0..<network.parameterCount { network.gradients[i] = Float(g.nextNormal()) }
            opt.step(learningRate: 0.1, globalStep: 0)
            updates.append(zip(network.valueBuffer, before).map { $0 - $1 })
            // Reconstruct the norms from the values before the step.
            if weighted {
                var offset = 0
                for p in network.parameters {
                    let rows = p.role == .decoupledFilter ? p.dims[0] : 1, n = p.count / rows
                    if p.role == .decoupledFilter { filters += rows }
                    for k in 0..<rows {
                        let lo = offset + k * n
                        let norm =
                            p.role == .decoupledFilter
                            ? (before[lo..<(lo + n)].reduce(0) { $0 + $1 * $1 } + DecoupledConv2D.normEpsilon)
                                .squareRoot() : 1
                        // Updates are differences of stored values: each carries the rounding of w
                        // (half an ulp), the plain one then scaled by the norm.
                        for i in lo..<(lo + n) {
                            let rounding = (norm + 1) * 2 * before[i].magnitude.ulp
                            XCTAssertEqual(
                                updates[1][i], norm * updates[0][i],
                                accuracy: 1e-5 * abs(norm * updates[0][i]) + rounding,
                                "\(p.name) filter \(k)")
                        }
                    }
                    offset += p.count
                }
            }
        }
        XCTAssertGreaterThan(filters, 8, "the model should have decoupled filters")
    }

    /// A tiny decoupled model trains with --weighted-gradients, and two runs are bit-identical.
    func testWeightedGradientsTrainingIsDeterministic() throws {
        let data = try learnableDataset(train: 64, test: 16)
        var runs: [(losses: [Float], values: [Float])] = []
        for _ in 0..<2 {
            var config = tinyConfig(tinyModel(tanhConv), batch: 16, lr: 0.05)
            config.weightedGradients = true
            XCTAssertEqual(config.problems(ranks: 1), [])
            let trainer = try Trainer(config: config, options: tinyOptions(data: data.path, maxSteps: 6))
            _ = try trainer.run()
            runs.append((trainer.stepLosses, Array(trainer.network.valueBuffer)))
        }
        XCTAssertEqual(runs[0].losses.count, 6)
        XCTAssertTrue(runs[0].losses.allSatisfy(\.isFinite), "\(runs[0].losses)")
        XCTAssertEqual(runs[0].losses, runs[1].losses)
        XCTAssertEqual(runs[0].values, runs[1].values)
        // And it is not a no-op: the trajectory differs from the unweighted one.
        let plain = try Trainer(
            config: tinyConfig(tinyModel(tanhConv), batch: 16, lr: 0.05),
            options: tinyOptions(data: data.path, maxSteps: 6))
        _ = try plain.run()
        XCTAssertNotEqual(Array(plain.network.valueBuffer), runs[0].values)
    }
}
