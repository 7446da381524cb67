import DCNetRandom
import DCNetTensor
import Foundation
import XCTest

@testable import DCNetLayers

/// Forward values of every operator against a direct loop over patches, written from the paper's
/// definitions in Double (independently of DecoupledOperator.evaluate).
final class DecoupledForwardTests: XCTestCase {
    struct Reference {
        let op: DecoupledOperator
        /// alpha·h(||x||). SegConv carries alpha inside: alpha·||x|| up to rho, then slope beta,
        /// beta·||x|| + alpha·rho − beta·rho, continuous at rho (the paper's form, not alpha·(…)).
        func scaledMagnitude(_ xn: Double, _ rho: Double) -> Double {
            let a = Double(op.alpha)
            switch op.magnitude {
            case .sphere: return a
            case .ball: return a * min(xn, rho) / rho
            case .tanh: return a * tanh(xn / rho)
            case .linear: return a * xn
            case .segmented(let b):
                let beta = Double(b)
                return xn <= rho ? a * xn : beta * xn + a * rho - beta * rho
            case .logarithmic: return a * log(1 + xn)
            }
        }
        func angular(_ cRaw: Double, k: Double) -> Double {
            let c = min(max(cRaw, -1), 1), theta = acos(c)
            switch op.angular {
            case .cosine: return cRaw
            case .linear: return 1 - 2 * theta / .pi
            case .sigmoid:
                // kappa·(1 − e)/(1 + e) with e = exp(z), z = (theta − π/2)/k, written as
                // −tanh(z/2)/tanh(π/(4k)), the same function without exp overflowing for small k.
                return -tanh((theta - .pi / 2) / (2 * k)) / tanh(.pi / (4 * k))
            case .squareCosine: return (cRaw < 0 ? -1 : 1) * cRaw * cRaw
            }
        }
        /// f as a function of u = <w/||w||, x>, ||x||, ||w||, rho and k, as the layers call the operator.
        func value(u: Double, xn: Double, wn: Double, rho: Double, k: Double) -> Double {
            let g = angular(u / xn, k: k), a = Double(op.alpha)
            switch op.weighting {
            case .none: return scaledMagnitude(xn, rho) * g
            case .linear: return a * wn * xn * g
            case .nonlinear: return a * tanh(wn * xn * g / rho)
            case .separable: return a * tanh(wn / rho) * tanh(xn / rho) * g
            }
        }
        func value(patch: [Double], filter: [Double], rho: Double) -> Double {
            let eps = 1e-4
            let xn = (patch.map { $0 * $0 }.reduce(0, +) + eps).squareRoot()
            let wn = (filter.map { $0 * $0 }.reduce(0, +) + eps).squareRoot()
            let dot = zip(patch, filter).map(*).reduce(0, +)
            return value(u: dot / wn, xn: xn, wn: wn, rho: rho, k: Double(op.sharpness))
        }
    }

    /// Runs the layer (fixed radius `rho`) and the reference on `fill`ed inputs and filters.
    func compare(
        _ op: DecoupledOperator, rho: Float, kernel: Int = 3, stride: Int = 1, padding: Int = 1,
        input: (Int) -> Float, filter: (Int) -> Float, file: StaticString = #filePath, line: UInt = #line
    ) {
        var op = op
        op.radius = .fixed(rho)
        let C = 3, H = 5, W = 5, K = 2
        let layer = DecoupledConv2D(
            "ref", inChannels: C, outChannels: K, kernel: kernel, stride: stride,
            padding: padding, operator: op)
        let arena = Arena()
        let shape = Shape(n: 1, c: C, h: H, w: W)
        _ = layer.build(input: shape, arena: arena)
        for p in layer.parameters { p.bind(value: arena.floats(p.count), gradient: arena.floats(p.count)) }
        for i in 0..<layer.weight.count { layer.weight.value[i] = filter(i) }
        let x = arena.tensor(shape)
        for i in 0..<x.count { x.data[i] = input(i) }
        let y = layer.forward(x, mode: .evaluation)
        let reference = Reference(op: op)
        var worst = 0.0
        for k in 0..<K {
            let f = (0..<(C * kernel * kernel)).map { Double(layer.weight.value[k * C * kernel * kernel + $0]) }
            for oy in 0..<y.shape.h {
                for ox in 0..<y.shape.w {
                    var patch: [Double] = []
                    for c in 0..<C {
                        for r in 0..<kernel {
                            for s in 0..<kernel {
                                let iy = oy * stride - padding + r, ix = ox * stride - padding + s
                                patch.append(
                                    iy < 0 || iy >= H || ix < 0 || ix >= W ? 0 : Double(x.data[(c * H + iy) * W + ix]))
                            }
                        }
                    }
                    let expected = reference.value(patch: patch, filter: f, rho: Double(rho))
                    let got = Double(y.data[(k * y.shape.h + oy) * y.shape.w + ox])
                    // Relative error, measured against at least 0.01 so float rounding of values near 0 passes.
                    worst = max(worst, abs(got - expected) / max(abs(expected), 1e-2))
                }
            }
        }
        XCTAssertLessThan(worst, 2e-4, "\(op.magnitude) \(op.angular) \(op.weighting)", file: file, line: line)
    }

    static let operators: [DecoupledOperator] = {
        var ops: [DecoupledOperator] = []
        for m in [MagnitudeFunction.sphere, .ball, .tanh, .linear, .segmented(beta: 0.3), .logarithmic] {
            for a in [AngularActivation.cosine, .linear, .sigmoid, .squareCosine] {
                ops.append(DecoupledOperator(magnitude: m, angular: a, alpha: 1.5))
            }
        }
        for w in [Weighting.linear, .nonlinear, .separable] {
            ops.append(DecoupledOperator(magnitude: .tanh, angular: .sigmoid, weighting: w, alpha: 0.7))
        }
        return ops
    }()

    func testRandomInputs() {
        var rng = SplitMix64(seed: 11)
        for op in Self.operators {
            let xs = (0..<75).map { _ in rng.normal() }, ws = (0..<54).map { _ in 0.3 * rng.normal() }
            compare(op, rho: 3, input: { xs[$0] }, filter: { ws[$0] })
            compare(op, rho: 2, kernel: 3, stride: 2, padding: 0, input: { xs[$0] }, filter: { ws[$0] })
        }
    }

    func testPatchNormNearZero() {
        var rng = SplitMix64(seed: 12)
        let ws = (0..<54).map { _ in rng.normal() }
        for op in Self.operators {
            compare(op, rho: 1, input: { _ in 0 }, filter: { ws[$0] })
            compare(op, rho: 1, input: { $0 == 37 ? 1e-3 : 0 }, filter: { ws[$0] })
        }
    }

    func testPatchNormExactlyAtRadius() {
        // A constant input of 1 gives interior patches with ||x||² = 27 exactly (3 channels × 3×3);
        // the radius is computed the same way in Float, so ||x|| == rho there.
        let rho = Float(27 + DecoupledConv2D.normEpsilon).squareRoot()
        var rng = SplitMix64(seed: 13)
        let ws = (0..<54).map { _ in rng.normal() }
        for op in Self.operators { compare(op, rho: rho, input: { _ in 1 }, filter: { ws[$0] }) }
    }

    func testCosineAtPlusAndMinusOne() {
        // Filters equal to (the negative of) a constant patch: cos(theta) = ±1 up to eps.
        for op in Self.operators {
            compare(op, rho: 4, input: { _ in 1 }, filter: { $0 < 27 ? 1 : -1 })
        }
    }
}
