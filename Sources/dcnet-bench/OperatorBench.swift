import DCNetData
import DCNetLayers
import DCNetTensor
import Foundation

/// `scripts/bench operator`: the element-wise part of the decoupled operators alone (one image of
/// the widest CNN-9 layer, K = 64 channels × P = 32·32 positions, in cache), in ns per output
/// element, and the accuracy of the approximations they use (tanh, acos, exp, log1p). TanhConv +
/// cosine has its own vectorised loop; the other rows take the specialised general path
/// (`DecoupledOperator.evaluate`).
enum OperatorBench {
    /// Every magnitude × angular pair (unweighted: each has its own specialised loop), then the
    /// weighted variants with TanhConv + cosine (the general path).
    static let operators: [(String, DecoupledOperator)] = {
        let magnitudes: [MagnitudeFunction] = [.tanh, .sphere, .ball, .linear, .segmented(beta: 0.5), .logarithmic]
        let angulars: [AngularActivation] = [.cosine, .linear, .sigmoid, .squareCosine]
        var list: [(String, DecoupledOperator)] = []
        for m in magnitudes {
            for a in angulars { list.append(("\(m) + \(a)", DecoupledOperator(magnitude: m, angular: a))) }
        }
        for w in [Weighting.linear, .nonlinear, .separable] {
            list.append(("tanh + cos, \(w.rawValue)", DecoupledOperator(magnitude: .tanh, weighting: w)))
        }
        return list
    }()

    static func run() throws {
        let reps = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 7
        let inner = 50
        let (K, P) = (Operands.K, Operands.P)
        let operands = Operands()
        print("decoupled operator benchmark: element-wise forward and backward of one \(K)×\(P) image (in cache),")
        print("ns per output element, median of \(reps) runs of \(inner) passes")
        print("")
        print(ConvBench.pad("operator", 26) + ConvBench.pad("forward", 10) + ConvBench.pad("backward", 10))
        var fastPath = (forward: 0.0, backward: 0.0)
        for (name, op) in operators {
            let (f, b) = nanosecondsPerElement(op, operands, reps: reps, inner: inner)
            if fastPath == (0, 0) { fastPath = (f, b) }
            print(ConvBench.pad(name, 26) + ConvBench.pad(String(format: "%.3f", f), 10) + String(format: "%.3f", b))
        }
        print("(backward includes copying u, which it overwrites: one 256 KB copy per pass)")
        print("")
        print(String(format: "operator-tanh-cos-forward-ns-per-element: %.3f", fastPath.forward))
        print(String(format: "operator-tanh-cos-backward-ns-per-element: %.3f", fastPath.backward))
        printApproximationErrors()
    }

    /// The inputs, outputs and scratch of one K × P image, with seeded random values in the ranges
    /// the operators see in training.
    struct Operands {
        static let K = 64, P = 1024
        let arena = Arena()
        let u, dy, out, du: UnsafeMutablePointer<Float>
        let xn, inv, dXn, scratch: UnsafeMutablePointer<Float>
        let wn, rho, sharpness, dWn, dRho, dK: UnsafeMutablePointer<Float>

        init() {
            let (K, P) = (Operands.K, Operands.P)
            (u, dy, out, du) = (arena.floats(K * P), arena.floats(K * P), arena.floats(K * P), arena.floats(K * P))
            (xn, inv, dXn, scratch) = (arena.floats(P), arena.floats(P), arena.floats(P), arena.floats(3 * P))
            (wn, rho, sharpness) = (arena.floats(K), arena.floats(K), arena.floats(K))
            (dWn, dRho, dK) = (arena.floats(K), arena.floats(K), arena.floats(K))
            var rng = Xoshiro256StarStar(seed: 7)
            for p in 0..<P { xn[p] = Float.random(in: 0.2...4, using: &rng); inv[p] = 1 / xn[p] }
            for i in 0..<(K * P) {
                // |u| ≤ ||x||: u is ||x||·cos(theta).
                u[i] = xn[i % P] * Float.random(in: -1...1, using: &rng)
                dy[i] = Float.random(in: -1...1, using: &rng)
            }
            for k in 0..<K { wn[k] = 1; rho[k] = Float.random(in: 0.5...2, using: &rng); sharpness[k] = 0.3 }
        }
    }

    /// The median over `reps` runs of `inner` forward passes and of `inner` backward passes, in ns
    /// per output element.
    static func nanosecondsPerElement(
        _ op: DecoupledOperator, _ o: Operands, reps: Int, inner: Int
    ) -> (forward: Double, backward: Double) {
        let (K, P) = (Operands.K, Operands.P)
        var tf: [Double] = [], tb: [Double] = []
        for _ in 0..<reps {
            tf.append(
                ConvBench.time {
                    for _ in 0..<inner {
                        op.forward(
                            u: o.u, xn: o.xn, invXn: o.inv, wn: o.wn, rho: o.rho, sharpness: o.sharpness, out: o.out,
                            channels: K, positions: P)
                    }
                })
            tb.append(
                ConvBench.time {
                    for _ in 0..<inner {
                        // backward overwrites its u with dL/du, so it runs on a copy.
                        o.du.update(from: o.u, count: K * P)
                        op.backward(
                            dy: o.dy, u: o.du, xn: o.xn, invXn: o.inv, wn: o.wn, rho: o.rho, sharpness: o.sharpness,
                            dXn: o.dXn, dWn: o.dWn, dRho: o.dRho, dK: o.dK, scratch: o.scratch, channels: K,
                            positions: P)
                    }
                })
        }
        let perElement = 1e9 / Double(inner * K * P)
        return (ConvBench.median(tf) * perElement, ConvBench.median(tb) * perElement)
    }

    /// Accuracy of the approximations as compiled here (with FMA where the kernels use it).
    static func printApproximationErrors() {
        func worstError(
            from lo: Double, to hi: Double, step: Double, relative: Bool,
            _ approx: (Float) -> Float, _ exact: (Double) -> Double
        ) -> Double {
            var worst = 0.0, x = lo
            while x <= hi {
                let e = exact(Double(Float(x))), d = abs(Double(approx(Float(x))) - e)
                worst = max(worst, relative ? d / abs(e) : d)
                x += step
            }
            return worst
        }
        print(
            String(
                format: "fast-tanh-max-abs-error: %.2e",
                worstError(from: -12, to: 12, step: 0.00037, relative: false, fastTanh, Foundation.tanh)))
        print(
            String(
                format: "fast-acos-max-abs-error: %.2e",
                worstError(from: -1, to: 1, step: 0.00003, relative: false, fastAcos, Foundation.acos)))
        print(
            String(
                format: "fast-exp-max-rel-error: %.2e",
                worstError(from: -87, to: 88, step: 0.0017, relative: true, fastExp, Foundation.exp)))
        print(
            String(
                format: "fast-log1p-max-rel-error: %.2e",
                worstError(from: 1e-4, to: 1e4, step: 0.0013, relative: true, fastLog1p, Foundation.log1p)))
    }
}
