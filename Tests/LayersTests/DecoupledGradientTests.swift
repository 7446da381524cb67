import DCNetRandom
import DCNetTensor
import Foundation
import XCTest

@testable import DCNetLayers

final class DecoupledGradientTests: XCTestCase {
    /// BallConv and SegConv have a kink at ||x|| = rho, and rho (≈ the mean patch norm) sits among
    /// the patch norms of random inputs, so finite differences in r straddle it. Scaling one image
    /// down and one up puts every patch norm far from rho, on both sides of it.
    static func separatePatchNorms(_ op: DecoupledOperator) -> ((Tensor) -> Void)? {
        switch op.magnitude {
        case .ball, .segmented:
            return { x in
                let per = x.shape.perSample
                for i in 0..<per { x.data[i] *= 0.2; x.data[per + i] *= 6 }
            }
        default: return nil
        }
    }

    static let magnitudes: [MagnitudeFunction] = [.sphere, .ball, .tanh, .linear, .segmented(beta: 0.4), .logarithmic]
    static let angulars: [AngularActivation] = [.cosine, .linear, .sigmoid, .squareCosine]

    func testEveryMagnitudeTimesAngularWithLearnableRadius() {
        for m in Self.magnitudes {
            for a in Self.angulars {
                let op = DecoupledOperator(magnitude: m, angular: a, radius: .learnable(decay: 0.9))
                let layer = DecoupledConv2D(
                    "\(m)-\(a)", inChannels: 3, outChannels: 4, kernel: 3,
                    stride: 1, padding: 1, operator: op)
                assertGradientsMatch(layer, input: Shape(n: 2, c: 3, h: 5, w: 5), prepare: Self.separatePatchNorms(op))
            }
        }
    }

    func testGeometriesStridePaddingKernel() {
        let geometries = [(1, 1, 0), (1, 2, 0), (3, 1, 0), (3, 2, 0), (3, 2, 1), (3, 1, 1), (5, 1, 2)]
        for (k, s, p) in geometries {
            for op in [
                DecoupledOperator(magnitude: .tanh), DecoupledOperator(magnitude: .logarithmic, angular: .sigmoid),
            ] {
                let layer = DecoupledConv2D(
                    "k\(k)s\(s)p\(p)", inChannels: 3, outChannels: 5, kernel: k,
                    stride: s, padding: p, operator: op)
                assertGradientsMatch(layer, input: Shape(n: 2, c: 3, h: 6, w: 7), prepare: Self.separatePatchNorms(op))
            }
        }
    }

    func testWeightedForms() {
        for w in [Weighting.linear, .nonlinear, .separable] {
            for a in [AngularActivation.cosine, .sigmoid, .squareCosine] {
                let op = DecoupledOperator(magnitude: .tanh, angular: a, weighting: w, radius: .learnable(decay: 0.9))
                let layer = DecoupledConv2D(
                    "\(w)-\(a)", inChannels: 3, outChannels: 4, kernel: 3,
                    padding: 1, operator: op)
                assertGradientsMatch(layer, input: Shape(n: 2, c: 3, h: 5, w: 5))
            }
        }
    }

    func testRadiusModesAndLearnableSharpness() {
        let ops = [
            DecoupledOperator(magnitude: .tanh, radius: .relative(decay: 0.9)),
            DecoupledOperator(magnitude: .tanh, radius: .fixed(2.5)),
            DecoupledOperator(magnitude: .segmented(beta: 0.2), radius: .fixed(3)),
            DecoupledOperator(magnitude: .tanh, angular: .sigmoid, learnableSharpness: true),
            DecoupledOperator(magnitude: .linear, angular: .sigmoid, sharpness: 0.5, learnableSharpness: true),
        ]
        for op in ops {
            let layer = DecoupledConv2D("op", inChannels: 3, outChannels: 4, kernel: 3, padding: 1, operator: op)
            assertGradientsMatch(layer, input: Shape(n: 2, c: 3, h: 5, w: 5), prepare: Self.separatePatchNorms(op))
        }
    }

    func testEvaluationModeUsesRunningRadiusAndStillDifferentiates() {
        // Attacks differentiate the evaluation-mode network: m is then a constant.
        let layer = DecoupledConv2D(
            "eval", inChannels: 3, outChannels: 4, kernel: 3, padding: 1,
            operator: DecoupledOperator(magnitude: .tanh))
        assertGradientsMatch(layer, input: Shape(n: 2, c: 3, h: 5, w: 5), mode: .evaluation, warmUp: 3)
    }

    /// alpha ≠ 1 for every magnitude: SegConv carries alpha inside its magnitude function.
    func testAlphaNotOne() {
        for m in Self.magnitudes {
            for a in [AngularActivation.cosine, .sigmoid] {
                let op = DecoupledOperator(magnitude: m, angular: a, alpha: 1.7, radius: .learnable(decay: 0.9))
                let layer = DecoupledConv2D(
                    "alpha-\(m)-\(a)", inChannels: 3, outChannels: 4, kernel: 3, padding: 1, operator: op)
                assertGradientsMatch(layer, input: Shape(n: 2, c: 3, h: 5, w: 5), prepare: Self.separatePatchNorms(op))
            }
        }
    }

    /// The weighted forms with a learnable sigmoid sharpness (dL/dk through ||w||) and with the linear activation.
    func testWeightedFormsWithLearnableSharpnessAndLinearActivation() {
        for w in [Weighting.linear, .nonlinear, .separable] {
            let ops = [
                DecoupledOperator(
                    magnitude: .tanh, angular: .sigmoid, weighting: w, alpha: 0.8, learnableSharpness: true),
                DecoupledOperator(magnitude: .tanh, angular: .linear, weighting: w, alpha: 1.3),
            ]
            for op in ops {
                let layer = DecoupledConv2D(
                    "\(w)-\(op.angular)", inChannels: 3, outChannels: 4, kernel: 3, padding: 1, operator: op)
                assertGradientsMatch(layer, input: Shape(n: 2, c: 3, h: 5, w: 5))
            }
        }
    }

    /// The attacks differentiate every operator in evaluation mode, where rho comes from the running mean.
    func testEvaluationModeEveryOperator() {
        var ops: [DecoupledOperator] = []
        for m in Self.magnitudes {
            for a in Self.angulars { ops.append(DecoupledOperator(magnitude: m, angular: a, alpha: 1.2)) }
        }
        for w in [Weighting.linear, .nonlinear, .separable] {
            ops.append(DecoupledOperator(magnitude: .tanh, angular: .sigmoid, weighting: w, learnableSharpness: true))
        }
        ops.append(DecoupledOperator(magnitude: .tanh, radius: .relative(decay: 0.9)))
        ops.append(DecoupledOperator(magnitude: .ball, radius: .fixed(3)))
        for op in ops {
            let layer = DecoupledConv2D(
                "eval-\(op.magnitude)-\(op.angular)-\(op.weighting)", inChannels: 3, outChannels: 4, kernel: 3,
                padding: 1, operator: op)
            assertGradientsMatch(
                layer, input: Shape(n: 2, c: 3, h: 5, w: 5), mode: .evaluation, warmUp: 3,
                prepare: Self.separatePatchNorms(op))
        }
    }

    /// Inputs parallel and antiparallel to filters, |cos θ| within 1e-4 of 1, in backward. The activations
    /// smooth there (cosine, square cosine) are checked by differences; for the arccos-based ones a
    /// difference step crosses θ = 0, so backward must only stay finite at |cos θ| = 1 exactly (their
    /// derivatives near 1 are checked in Double in DecoupledOperatorMathTests).
    func testCosineNearPlusAndMinusOneInBackward() {
        func aligned(_ layer: DecoupledConv2D, noise: Float) -> (Tensor) -> Void {
            { x in
                // Sample 0 along filter 0, sample 1 against filter 1 (the 1×1 patch is the input pixel).
                let C = layer.inChannels
                for c in 0..<C {
                    x.data[c] = layer.weight.value[c] * (1 + noise * x.data[c])
                    x.data[C + c] = -2 * layer.weight.value[C + c] * (1 + noise * x.data[C + c])
                }
            }
        }
        for m in [MagnitudeFunction.tanh, .linear, .sphere] {
            for a in Self.angulars {
                let op = DecoupledOperator(magnitude: m, angular: a, radius: .relative(decay: 0.9))
                let layer = DecoupledConv2D("aligned-\(m)-\(a)", inChannels: 6, outChannels: 3, kernel: 1, operator: op)
                let shape = Shape(n: 2, c: 6, h: 1, w: 1)
                if a == .cosine || a == .squareCosine {
                    assertGradientsMatch(layer, input: shape, prepare: aligned(layer, noise: 1e-3))
                }
                // Exactly aligned: backward is finite.
                let arena = Arena()
                var rng = SplitMix64(seed: 5)
                let out = layer.build(input: shape, arena: arena)
                bindRandomParameters(layer, arena: arena, rng: &rng)
                let x = arena.tensor(shape)
                aligned(layer, noise: 0)(x)
                let y = layer.forward(x, mode: .training)
                XCTAssert(y.toArray().allSatisfy(\.isFinite), "\(m) \(a)")
                let dy = arena.tensor(out)
                for i in 0..<dy.count { dy.data[i] = 1 }
                let dx = layer.backward(dy, needInputGradient: true)!
                XCTAssert(dx.toArray().allSatisfy(\.isFinite), "\(m) \(a): \(dx.toArray())")
                XCTAssert(layer.weight.gradientBuffer.allSatisfy(\.isFinite), "\(m) \(a)")
            }
        }
    }

    /// One 1×1 sample: the batch mean patch norm m is the sample's own ||x||, and rho = (r² + 1e-4)·m, so
    /// h(||x||/rho) of TanhConv and BallConv (and the tanh forms' ||x||/rho) do not depend on ||x|| at all:
    /// the gradient through m cancels the magnitude's exactly, and leaving it out gives an O(1) error in
    /// dL/dx. (In the other tests its share of ||dx|| is 0.1–14%, under the checker's tolerance.)
    func testGradientThroughMeanPatchNormDominates() {
        let ops = [
            DecoupledOperator(magnitude: .tanh, radius: .relative(decay: 0.9)),
            DecoupledOperator(magnitude: .tanh, angular: .sigmoid, radius: .learnable(decay: 0.9)),
            DecoupledOperator(magnitude: .ball, angular: .linear, alpha: 1.5, radius: .relative(decay: 0.9)),
            DecoupledOperator(magnitude: .tanh, weighting: .nonlinear, radius: .learnable(decay: 0.9)),
            DecoupledOperator(magnitude: .tanh, angular: .squareCosine, weighting: .separable),
        ]
        for op in ops {
            let layer = DecoupledConv2D(
                "m-\(op.magnitude)-\(op.angular)-\(op.weighting)", inChannels: 5, outChannels: 3, kernel: 1,
                operator: op)
            assertGradientsMatch(layer, input: Shape(n: 1, c: 5, h: 1, w: 1), inputScale: 2)
        }
    }

    /// rho = (r² + 1e-4)·m with m the batch mean patch norm in training, and in evaluation the running
    /// mean of m with its bias corrected, EMA/(1 − decay^steps); before any training step, the batch's m.
    func testRadiusAndRunningMeanAgainstReference() {
        for learnable in [false, true] {
            let decay: Float = 0.8
            let op = DecoupledOperator(
                magnitude: .tanh, radius: learnable ? .learnable(decay: decay) : .relative(decay: decay))
            let layer = DecoupledConv2D("rho", inChannels: 2, outChannels: 3, kernel: 3, padding: 1, operator: op)
            let shape = Shape(n: 2, c: 2, h: 4, w: 5)
            let arena = Arena()
            var rng = SplitMix64(seed: 9)
            _ = layer.build(input: shape, arena: arena)
            bindRandomParameters(layer, arena: arena, rng: &rng)
            let r = (0..<3).map { Double(layer.radiusParameter?.value[$0] ?? 1) }
            let x = arena.tensor(shape)
            func fill(scale: Float) {
                for i in 0..<x.count { x.data[i] = scale * rng.normal() }
            }
            /// The mean over the batch of sqrt(Σ over the zero-padded 3×3 window and channels of x² + 1e-4).
            func meanPatchNorm() -> Double {
                var sum = 0.0
                for n in 0..<2 {
                    for oy in 0..<4 {
                        for ox in 0..<5 {
                            var s = 1e-4
                            for c in 0..<2 {
                                for iy in (oy - 1)...(oy + 1) where iy >= 0 && iy < 4 {
                                    for ix in (ox - 1)...(ox + 1) where ix >= 0 && ix < 5 {
                                        let v = Double(x.data[((n * 2 + c) * 4 + iy) * 5 + ix])
                                        s += v * v
                                    }
                                }
                            }
                            sum += s.squareRoot()
                        }
                    }
                }
                return sum / 40
            }
            func assertRadii(_ m: Double, _ what: String) {
                for k in 0..<3 {
                    let expected = (r[k] * r[k] + 1e-4) * m
                    XCTAssertEqual(Double(layer.radii[k]), expected, accuracy: 1e-5 * expected, "\(what), channel \(k)")
                }
            }
            // Evaluation before any training step uses the batch's own m and leaves the running mean alone.
            fill(scale: 0.5)
            _ = layer.forward(x, mode: .evaluation)
            assertRadii(meanPatchNorm(), "evaluation before training")
            var ema = 0.0
            for step in 1...3 {
                fill(scale: Float(step))
                _ = layer.forward(x, mode: .training)
                let m = meanPatchNorm()
                ema = Double(decay) * ema + (1 - Double(decay)) * m
                assertRadii(m, "training step \(step)")
                let running = layer.state[0]
                XCTAssertEqual(Double(running.data[0]), ema, accuracy: 1e-5 * ema, "biased running mean")
                XCTAssertEqual(running.data[1], Float(step))
            }
            fill(scale: 7)
            _ = layer.forward(x, mode: .evaluation)
            assertRadii(ema / (1 - pow(Double(decay), 3)), "evaluation after 3 steps")
        }
    }

    func testDecoupledFullyConnected() {
        let layer = DecoupledConv2D(
            "fc", inChannels: 12, outChannels: 5, kernel: 1,
            operator: DecoupledOperator(magnitude: .tanh))
        assertGradientsMatch(layer, input: Shape(n: 4, c: 12, h: 1, w: 1))
    }

    /// The checker must be able to fail: a layer whose input gradient has the wrong sign.
    func testCheckerCatchesAFlippedSign() {
        final class FlippedSign: Layer {
            let inner: DecoupledConv2D
            var name: String { "flipped" }
            init() {
                inner = DecoupledConv2D(
                    "inner", inChannels: 3, outChannels: 4, kernel: 3, padding: 1,
                    operator: DecoupledOperator(magnitude: .tanh))
            }
            var parameters: [Parameter] { inner.parameters }
            func build(input: Shape, arena: Arena) -> Shape { inner.build(input: input, arena: arena) }
            func forward(_ x: Tensor, mode: Mode) -> Tensor { inner.forward(x, mode: mode) }
            func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
                let dx = inner.backward(
                    dy, needInputGradient: needInputGradient, needParameterGradients: needParameterGradients)!
                for i in 0..<dx.count { dx.data[i] = -dx.data[i] }
                return dx
            }
        }
        let report = checkGradients(FlippedSign(), input: Shape(n: 2, c: 3, h: 5, w: 5))
        XCTAssertGreaterThan(report.worst, 1.0, "a flipped sign must give a relative error near 2\n\(report)")
    }

    /// The checker must also catch a wrong term much smaller than the gradient, as a missing term
    /// would leave: the input gradient is perturbed by alternating ±10% of its RMS.
    func testCheckerCatchesAMissingTerm() {
        final class PerturbedInputGradient: Layer {
            let inner = DecoupledConv2D(
                "inner", inChannels: 3, outChannels: 4, kernel: 3, padding: 1,
                operator: DecoupledOperator(magnitude: .tanh))
            var name: String { "perturbed-input-gradient" }
            var parameters: [Parameter] { inner.parameters }
            func build(input: Shape, arena: Arena) -> Shape { inner.build(input: input, arena: arena) }
            func forward(_ x: Tensor, mode: Mode) -> Tensor { inner.forward(x, mode: mode) }
            func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
                let dx = inner.backward(dy, needInputGradient: true, needParameterGradients: needParameterGradients)!
                // Perturb by 10% of the gradient's own scale: a term of that size must be caught.
                var norm: Float = 0
                for i in 0..<dx.count { norm += dx.data[i] * dx.data[i] }
                let scale = 0.1 * (norm / Float(dx.count)).squareRoot()
                for i in 0..<dx.count { dx.data[i] += (i % 2 == 0 ? scale : -scale) }
                return dx
            }
        }
        let report = checkGradients(PerturbedInputGradient(), input: Shape(n: 2, c: 3, h: 5, w: 5))
        XCTAssertGreaterThan(report.worst, 0.05, "\(report)")
    }
}
