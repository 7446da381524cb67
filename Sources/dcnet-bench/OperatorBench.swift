import DCNetData
import DCNetLayers
import DCNetTensor
import Foundation

/// `scripts/bench operator`: the element-wise part of the decoupled operators alone (one image of
/// the widest CNN-9 layer, K = 64 channels × P = 32·32 positions, in cache), in ns per output
/// element, and the accuracy of the tanh approximation they use. TanhConv + cosine has its own
/// vectorised loop; the other rows take the specialised general path (`DecoupledOperator.evaluate`).
enum OperatorBench {
    static let operators: [(String, DecoupledOperator)] = [
        ("TanhConv + cosine", DecoupledOperator(magnitude: .tanh)),
        ("SphereConv + cosine", DecoupledOperator(magnitude: .sphere)),
        ("BallConv + linear", DecoupledOperator(magnitude: .ball, angular: .linear)),
        ("TanhConv + sigmoid", DecoupledOperator(magnitude: .tanh, angular: .sigmoid)),
        ("LinearConv + sq. cosine", DecoupledOperator(magnitude: .linear, angular: .squareCosine)),
    ]

    static func run() throws {
        let K = 64, P = 1024
        let reps = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 7
        let inner = 50
        let arena = Arena()
        let u = arena.floats(K * P), dy = arena.floats(K * P), out = arena.floats(K * P), du = arena.floats(K * P)
        let xn = arena.floats(P), inv = arena.floats(P), dXn = arena.floats(P), scratch = arena.floats(P)
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
                tf.append(ConvBench.time {
                    for _ in 0..<inner {
                        op.forward(u: u, xn: xn, invXn: inv, wn: wn, rho: rho, sharpness: sharpness, out: out,
                                   channels: K, positions: P)
                    }
                })
                tb.append(ConvBench.time {
                    for _ in 0..<inner {
                        // backward overwrites its u with dL/du, so it runs on a copy.
                        du.update(from: u, count: K * P)
                        op.backward(dy: dy, u: du, xn: xn, invXn: inv, wn: wn, rho: rho, sharpness: sharpness,
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
        var worst = 0.0
        var x: Float = -12
        while x <= 12 {
            worst = max(worst, abs(Double(fastTanh(x)) - Foundation.tanh(Double(x))))
            x += 0.00037
        }
        print("")
        print(String(format: "operator-tanh-cos-forward-ns-per-element: %.3f", fastPath.forward))
        print(String(format: "operator-tanh-cos-backward-ns-per-element: %.3f", fastPath.backward))
        print(String(format: "fast-tanh-max-abs-error: %.2e", worst))
    }
}
