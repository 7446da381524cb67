import DCNetTensor
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
            func backward(_ dy: Tensor, needInputGradient: Bool) -> Tensor? {
                let dx = inner.backward(dy, needInputGradient: needInputGradient)!
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
            func backward(_ dy: Tensor, needInputGradient: Bool) -> Tensor? {
                let dx = inner.backward(dy, needInputGradient: true)!
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
