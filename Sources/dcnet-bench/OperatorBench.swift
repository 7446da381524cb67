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
        let K = 64, P = 1024
        let reps = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 7
        let inner = 50
        let arena = Arena()
        let u = arena.floats(K * P), dy = arena.floats(K * P), out = arena.floats(K * P), du = arena.floats(K * P)
        let xn = arena.floats(P), inv = arena.floats(P), dXn = arena.floats(P), scratch = arena.floats(3 * P)
        let wn = arena.floats(K), rho = arena.floats(K), sharpness = arena.floats(K)
        let dWn = arena.floats(K), dRho = arena.floats(K), dK = arena.floats(K)
        var rng = Xoshiro256StarStar(seed: 7)
        for p in 0..<P { xn[p] = Float.random(in: 0.2...4, using: &rng); inv[p] = 1 / xn[p] }
        for i in 0..<(K * P) {
            // |u| ≤ ||x||: u is ||x||·cos(theta).
            u[i] = xn[i % P] * Float.random(in: -1...1, using: &rng)
            dy[i] = Float.random(in: -1...1, using: &rng)
        }
        for k in 0..<K { wn[k] = 1; rho[k] = Float.random(in: 0.5...2, using: &rng); sharpness[k] = 0.3 }
        print("decoupled operator benchmark: element-wise forward and backward of one \(K)×\(P) image (in cache),")
        print("ns per output element, median of \(reps) runs of \(inner) passes")
        print("")
        print(ConvBench.pad("operator", 26) + ConvBench.pad("forward", 10) + ConvBench.pad("backward", 10))
        var fastPath = (forward: 0.0, backward: 0.0)
        for (name, op) in operators {
            var tf: [Double] = [], tb: [Double] = []
            for _ in 0..<reps {
                tf.append(
                    ConvBench.time {
                        for _ in 0..<inner {
                            op.forward(
                                u: u, xn: xn, invXn: inv, wn: wn, rho: rho, sharpness: sharpness, out: out,
                                channels: K, positions: P)
                        }
                    })
                tb.append(
                    ConvBench.time {
                        for _ in 0..<inner {
                            // backward overwrites its u with dL/du, so it runs on a copy.
                            du.update(from: u, count: K * P)
                            op.backward(
                                dy: dy, u: du, xn: xn, invXn: inv, wn: wn, rho: rho, sharpness: sharpness,
                                dXn: dXn, dWn: dWn, dRho: dRho, dK: dK, scratch: scratch, channels: K, positions: P)
                        }
                    })
            }
            let perElement = 1e9 / Double(inner * K * P)
            let f = ConvBench.median(tf) * perElement, b = ConvBench.median(tb) * perElement
            if fastPath == (0, 0) { fastPath = (f, b) }
            print(ConvBench.pad(name, 26) + ConvBench.pad(String(format: "%.3f", f), 10) + String(format: "%.3f", b))
        }
        print("(backward includes copying u, which it overwrites: one 256 KB copy per pass)")
        // Accuracy of the approximations as compiled here (with FMA where the kernels use it).
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
        print("")
        print(String(format: "operator-tanh-cos-forward-ns-per-element: %.3f", fastPath.forward))
        print(String(format: "operator-tanh-cos-backward-ns-per-element: %.3f", fastPath.backward))
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
