import DCNetRandom
import DCNetTensor
import Foundation
import XCTest

@testable import DCNetLayers

/// The element-wise operator math (`DecoupledOperator.evaluate`, Float) against the Double reference
/// of DecoupledForwardTests and its central differences. In Double the differences are accurate to
/// about 1e-9, so the tolerance is set by Float rounding, not by the check: a wrong or missing term
/// of 0.1% of a derivative fails, which the layer-level checks in Float (2e-2) cannot see.
final class DecoupledOperatorMathTests: XCTestCase {
    typealias Reference = DecoupledForwardTests.Reference

    struct Point { var u: Double, xn: Double, wn: Double, rho: Double, k: Double }

    /// The reference derivatives by central differences in Double, each with a step relative to its
    /// own variable (small enough for |cos θ| = 1 − 1e-4 and to stay on one side of a kink).
    static func referenceDerivatives(_ r: Reference, _ p: Point) -> [Double] {
        func f(_ q: Point) -> Double { r.value(u: q.u, xn: q.xn, wn: q.wn, rho: q.rho, k: q.k) }
        let paths: [WritableKeyPath<Point, Double>] = [\.u, \.xn, \.wn, \.rho, \.k]
        return paths.map { path in
            // u steps with xn: its scale is ||x||, and u may be 0.
            let h = 1e-7 * (path == \.u ? p.xn : p[keyPath: path])
            var plus = p, minus = p
            plus[keyPath: path] += h; minus[keyPath: path] -= h
            return (f(plus) - f(minus)) / (2 * h)
        }
    }

    /// Worst error of f and its five partial derivatives, each relative to max(|reference|, floor).
    static func worstError(_ op: DecoupledOperator, _ p: Point, floor: Double = 1e-2) -> (Double, String) {
        let r = Reference(op: op)
        let d = op.evaluate(u: Float(p.u), xn: Float(p.xn), wn: Float(p.wn), rho: Float(p.rho), k: Float(p.k))
        let got = [d.f, d.dU, d.dXn, d.dWn, d.dRho, d.dK].map(Double.init)
        let expected = [r.value(u: p.u, xn: p.xn, wn: p.wn, rho: p.rho, k: p.k)] + referenceDerivatives(r, p)
        var worst = 0.0
        for (g, e) in zip(got, expected) { worst = max(worst, abs(g - e) / max(abs(e), floor)) }
        return (worst, "\(op.magnitude) \(op.angular) \(op.weighting) alpha \(op.alpha) at \(p): \(got) vs \(expected)")
    }

    static let operators: [DecoupledOperator] = {
        var ops: [DecoupledOperator] = []
        for alpha: Float in [1, 1.7] {
            for m in [MagnitudeFunction.sphere, .ball, .tanh, .linear, .segmented(beta: 0.4), .logarithmic] {
                for a in [AngularActivation.cosine, .linear, .sigmoid, .squareCosine] {
                    ops.append(DecoupledOperator(magnitude: m, angular: a, alpha: alpha))
                }
            }
            for w in [Weighting.linear, .nonlinear, .separable] {
                for a in [AngularActivation.cosine, .linear, .sigmoid, .squareCosine] {
                    ops.append(DecoupledOperator(magnitude: .tanh, angular: a, weighting: w, alpha: alpha))
                }
            }
        }
        return ops
    }()

    /// Random points with ||x|| on both sides of rho (at least 5% from BallConv's and SegConv's kink).
    static func points(count: Int, seed: UInt64, cosines: ClosedRange<Double> = -0.95...0.95) -> [Point] {
        var rng = SplitMix64(seed: seed)
        var out: [Point] = []
        while out.count < count {
            let xn = 0.05 + 4 * abs(Double(rng.normal())), rho = 0.3 + 2 * abs(Double(rng.normal()))
            if abs(xn - rho) < 0.05 * rho { continue }
            let c = cosines.lowerBound + (cosines.upperBound - cosines.lowerBound) * rng.nextDouble()
            let k = 0.1 + 0.8 * rng.nextDouble(), wn = 0.2 + 2 * abs(Double(rng.normal()))
            // Through Float and back, so that the reference sees exactly the Float inputs.
            out.append(
                Point(
                    u: Double(Float(c * xn)), xn: Double(Float(xn)), wn: Double(Float(wn)),
                    rho: Double(Float(rho)), k: Double(Float(k))))
        }
        return out
    }

    func testEveryOperatorAgainstDoubleReference() {
        for op in Self.operators {
            var worst = 0.0, detail = ""
            for p in Self.points(count: 40, seed: 21) {
                let (e, d) = Self.worstError(op, p)
                if e > worst { (worst, detail) = (e, d) }
            }
            // 2e-3: release builds use the polynomial tanh/exp of FastMath, whose Float rounding
            // leaves derivatives of about 1e-5 where the Double reference has saturated to 0
            // (seen: 1.01e-3 for tanh + sigmoid, nonlinear weighting, alpha 1.7).
            XCTAssertLessThan(worst, 2e-3, detail)
        }
    }

    /// The vectorised TanhConv + cosine rows (`forward`/`backward` take their own path for it, not
    /// `evaluate`) against the Double reference: value, dL/du, dL/d||x|| and the per-channel dL/dρ.
    func testFusedTanhCosineRowsAgainstDoubleReference() {
        for alpha: Float in [1, 1.7] {
            let op = DecoupledOperator(magnitude: .tanh, angular: .cosine, alpha: alpha)
            XCTAssert(op.isTanhCosine)
            let r = Reference(op: op)
            let K = 3, P = 16
            var rng = SplitMix64(seed: 5)
            let positions = Self.points(count: P, seed: 33)
            let rho = (0..<K).map { _ in Double(Float(0.3 + 2 * abs(Double(rng.normal())))) }
            // Cosines per (k, p): u = c·||x||, through Float.
            let u = (0..<(K * P)).map { i in Double(Float((2 * rng.nextDouble() - 1) * 0.95 * positions[i % P].xn)) }
            let dy = (0..<(K * P)).map { _ in Double(Float(rng.normal())) }
            let xn = positions.map(\.xn)
            let xnF = xn.map(Float.init), invXnF = xnF.map { 1 / $0 }
            let wnF = [Float](repeating: 1, count: K), rhoF = rho.map(Float.init)
            let kF = [Float](repeating: op.sharpness, count: K)
            var out = [Float](repeating: 0, count: K * P)
            op.forward(
                u: u.map(Float.init), xn: xnF, invXn: invXnF, wn: wnF, rho: rhoF, sharpness: kF, out: &out,
                channels: K, positions: P)
            var uGrad = u.map(Float.init)
            var dXn = [Float](repeating: 0, count: P), dWn = [Float](repeating: 0, count: K)
            var dRho = dWn, dK = dWn
            var scratch = [Float](repeating: 0, count: 3 * P)
            op.backward(
                dy: dy.map(Float.init), u: &uGrad, xn: xnF, invXn: invXnF, wn: wnF, rho: rhoF, sharpness: kF,
                dXn: &dXn, dWn: &dWn, dRho: &dRho, dK: &dK, scratch: &scratch, channels: K, positions: P)
            var expectedDXn = [Double](repeating: 0, count: P), expectedDRho = [Double](repeating: 0, count: K)
            func close(_ got: Float, _ expected: Double, _ scale: Double, _ what: String) {
                XCTAssertLessThan(
                    abs(Double(got) - expected) / max(abs(expected), scale), 2e-3,
                    "alpha \(alpha) \(what): \(got) vs \(expected)")
            }
            for k in 0..<K {
                for p in 0..<P {
                    let i = k * P + p
                    let point = Point(u: u[i], xn: xn[p], wn: 1, rho: rho[k], k: Double(op.sharpness))
                    let d = Self.referenceDerivatives(r, point)
                    close(
                        out[i], r.value(u: point.u, xn: point.xn, wn: 1, rho: point.rho, k: point.k), 1e-2,
                        "f[\(k),\(p)]")
                    close(uGrad[i], dy[i] * d[0], 1e-2, "dL/du[\(k),\(p)]")
                    expectedDXn[p] += dy[i] * d[1]
                    expectedDRho[k] += dy[i] * d[3]
                }
            }
            // Sums over channels or positions, whose terms of both signs may cancel: relative to max(|sum|, 0.1).
            for p in 0..<P { close(dXn[p], expectedDXn[p], 1e-1, "dL/d||x||[\(p)]") }
            for k in 0..<K { close(dRho[k], expectedDRho[k], 1e-1, "dL/dρ[\(k)]") }
            XCTAssertEqual(dWn, [0, 0, 0])
        }
    }

    /// |cos θ| near 1, where the arccos of the linear and sigmoid activations is steep (1/sin θ) and the
    /// Float rounding of c = u/||x|| is amplified by about 1/(1 − |c|).
    func testCosineNearPlusAndMinusOne() {
        for op in Self.operators {
            for (side, sign) in [(0.999...0.9999, 1.0), (0.999...0.9999, -1.0)] {
                var worst = 0.0, detail = ""
                for var p in Self.points(count: 20, seed: 22, cosines: side) {
                    p.u = Double(Float(sign * p.u))
                    let (e, d) = Self.worstError(op, p)
                    if e > worst { (worst, detail) = (e, d) }
                }
                XCTAssertLessThan(worst, 5e-3, detail)
            }
        }
    }

    /// At |cos θ| = 1 exactly (and just past it, as Float rounding of u/||x|| can give), arccos has no
    /// derivative; the operator clamps sin²θ ≥ 1e-6 so backward stays finite.
    func testCosineAtOrPastOneIsFinite() {
        for op in Self.operators {
            for c: Float in [1, -1, 1.000001, -1.000001] {
                let d = op.evaluate(u: 2 * c, xn: 2, wn: 1.3, rho: 1.1, k: 0.3)
                for v in [d.f, d.dU, d.dXn, d.dWn, d.dRho, d.dK] {
                    XCTAssert(v.isFinite, "\(op.magnitude) \(op.angular) \(op.weighting) c = \(c): \(d)")
                }
            }
        }
    }

    /// SegConv with alpha ≠ 1: alpha·||x|| below rho, slope beta above, continuous at rho. With alpha = 2,
    /// beta = 0.5, rho = 1 and ||x|| = 3 at cos θ = 1: f = 0.5·3 + 2·1 − 0.5·1 = 3 (not 2·(1.5 + 1 − 0.5) = 4).
    func testSegmentedAlphaIsInsideTheMagnitude() {
        let op = DecoupledOperator(magnitude: .segmented(beta: 0.5), alpha: 2)
        let above = op.evaluate(u: 3, xn: 3, wn: 1, rho: 1, k: 0.3)
        XCTAssertEqual(above.f, 3, accuracy: 1e-6)
        // ∂f/∂||x|| = beta·g + h·∂g/∂||x|| with g = u/||x||: 0.5 − 3·3/9 = −0.5; ∂f/∂rho = (alpha − beta)·g.
        XCTAssertEqual(above.dXn, -0.5, accuracy: 1e-6)
        XCTAssertEqual(above.dRho, 1.5, accuracy: 1e-6)
        let below = op.evaluate(u: 0.5, xn: 0.5, wn: 1, rho: 1, k: 0.3)
        XCTAssertEqual(below.f, 1, accuracy: 1e-6)
        // Continuity at rho: both sides give alpha·rho.
        let left = op.evaluate(u: 1, xn: 1, wn: 1, rho: 1, k: 0.3).f
        let right = op.evaluate(u: 1.0001, xn: 1.0001, wn: 1, rho: 1, k: 0.3).f
        XCTAssertEqual(left, 2, accuracy: 1e-6)
        XCTAssertEqual(right, 2, accuracy: 1e-3)
    }

    /// A fixed sharpness below about 0.018 overflowed the clamped exponential (e ≈ e^88, 2·e·(θ − π/2)
    /// = inf, (1 + e)² = inf) and made ∂g/∂k NaN.
    func testSigmoidDerivativesAreFiniteForSmallSharpness() {
        let op = DecoupledOperator(magnitude: .sphere, angular: .sigmoid)
        let r = Reference(op: op)
        for k: Float in [0.05, 0.018, 0.01, 0.005, 0.001] {
            for c: Float in [-1, -0.99, -0.7, -0.3, -0.01, 0, 0.01, 0.3, 0.7, 0.99, 1] {
                let (g, dC, dK) = AngularActivation.sigmoid.evaluate(c, sharpness: k)
                XCTAssert(g.isFinite && dC.isFinite && dK.isFinite, "k = \(k), c = \(c): \(g) \(dC) \(dK)")
                XCTAssertEqual(
                    Double(g), r.angular(Double(c), k: Double(k)), accuracy: 1e-5 + 2e-7 / Double(k),
                    "k = \(k), c = \(c)")
            }
        }
        // Away from θ = π/2 the k-derivative vanishes like e^(−|θ − π/2|/k); near it, it matches the reference.
        for p in Self.points(count: 20, seed: 23, cosines: -0.2...0.2) {
            var q = p
            q.k = 0.01
            let (e, d) = Self.worstError(op, q, floor: 1)
            XCTAssertLessThan(e, 1e-3, d)
        }
    }

    /// dL/dk is summed only when k is learnable: with a fixed k nothing reads it, and its terms (NaN before
    /// the stable form for small k) must not reach the layer's sums.
    func testBackwardSumsSharpnessGradientOnlyWhenLearnable() {
        let P = 4, K = 2
        for learnable in [false, true] {
            let op = DecoupledOperator(
                magnitude: .tanh, angular: .sigmoid, radius: .fixed(1), sharpness: learnable ? 0.3 : 0.01,
                learnableSharpness: learnable)
            var u: [Float] = [0.9, -0.5, 0.1, -1.2, 0.3, 1.1, -0.8, 0.05]
            let dy: [Float] = [1, -2, 0.5, 1.5, -1, 0.7, 0.3, -0.4]
            let xn: [Float] = [1, 1.2, 0.4, 1.5], invXn = xn.map { 1 / $0 }
            let wn: [Float] = [1, 2], rho: [Float] = [1, 1.5], k = [op.sharpness, op.sharpness]
            var dXn = [Float](repeating: 0, count: P), dWn = [Float](repeating: 0, count: K)
            var dRho = dWn, dK = dWn
            var scratch = [Float](repeating: 0, count: 3 * P)
            op.backward(
                dy: dy, u: &u, xn: xn, invXn: invXn, wn: wn, rho: rho, sharpness: k, dXn: &dXn, dWn: &dWn,
                dRho: &dRho, dK: &dK, scratch: &scratch, channels: K, positions: P)
            XCTAssert((u + dXn + dRho + dK).allSatisfy(\.isFinite), "learnable \(learnable): \(u) \(dXn) \(dRho) \(dK)")
            if learnable {
                XCTAssert(dK.allSatisfy { $0 != 0 }, "\(dK)")
            } else {
                XCTAssertEqual(dK, [0, 0])
            }
        }
    }
}
