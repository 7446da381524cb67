import BLAS
import DCNetData
import DCNetLayers
import DCNetTensor
import Foundation

/// `scripts/bench conv`: forward and backward GFLOP/s of the baseline convolution and of
/// TanhConv + cosine (learnable radius) on the CNN-9 layer shapes at batch 64, one thread, next to
/// a raw sgemm of the same GEMM shapes measured in the same run.
enum ConvBench {
    struct Case { let size: Int, channels: Int }
    static let cases = [Case(size: 32, channels: 64), Case(size: 16, channels: 128), Case(size: 8, channels: 256)]

    static func run() throws {
        let batch = 64
        let reps = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 7
        BLAS.threadCount = 1
        print("conv benchmark: batch \(batch), 3×3 stride 1 pad 1, 1 OpenBLAS thread, median of \(reps) runs")
        print("GFLOP/s counts the direct convolution's multiply-adds (2·K·CRS·P per image forward, twice that")
        print("backward): effective rates. The layers use \(BenchConvolution.algorithm) (Winograd does 4× fewer")
        print("multiply-adds), so dc/sgemm above 1 means faster than im2col + sgemm at the sgemm column's rate.")
        print("")
        print(
            pad("layer", 16) + pad("sgemm f+b", 11) + pad("base fwd", 10) + pad("base bwd", 10)
                + pad("dc fwd", 10) + pad("dc bwd", 10) + pad("dc/sgemm", 10) + pad("dc/base time", 13))
        var minRatio = Double.infinity, maxTimeRatio = 0.0
        for c in cases {
            let shape = Shape(n: batch, c: c.channels, h: c.size, w: c.size)
            let arena = Arena()
            var rng = Xoshiro256StarStar(seed: UInt64(c.size))
            let x = arena.tensor(shape)
            for i in 0..<x.count { x.data[i] = Float.random(in: -1...1, using: &rng) }
            let baseline = Conv2D(
                "base", inChannels: c.channels, outChannels: c.channels, kernel: 3, padding: 1, bias: false,
                algorithm: BenchConvolution.algorithm)
            let decoupled = DecoupledConv2D(
                "tanh", inChannels: c.channels, outChannels: c.channels, kernel: 3,
                padding: 1, operator: DecoupledOperator(magnitude: .tanh), algorithm: BenchConvolution.algorithm)
            var layerOutputs: [Tensor] = []
            for layer in [baseline, decoupled] as [Layer] {
                let out = layer.build(input: shape, arena: arena)
                for p in layer.parameters {
                    p.bind(value: arena.floats(p.count), gradient: arena.floats(p.count))
                    for i in 0..<p.count {
                        p.value[i] = p.role == .radius ? 1 : Float.random(in: -0.05...0.05, using: &rng)
                    }
                }
                let dy = arena.tensor(out)
                for i in 0..<dy.count { dy.data[i] = Float.random(in: -1...1, using: &rng) }
                layerOutputs.append(dy)
            }
            let dy = layerOutputs[0]
            let K = c.channels, CRS = c.channels * 9, P = c.size * c.size
            let flopsForward = 2.0 * Double(K * CRS * P * batch)
            // Raw sgemm: the three per-image GEMMs of a training step on packed operands.
            let a = arena.floats(K * CRS), b = arena.floats(CRS * P), out = arena.floats(K * P)
            let db = arena.floats(CRS * P), da = arena.floats(K * CRS)
            for i in 0..<(CRS * P) { b[i] = Float.random(in: -1...1, using: &rng) }
            for i in 0..<(K * CRS) { a[i] = Float.random(in: -1...1, using: &rng) }
            var tSgemm: [Double] = [], tbf: [Double] = [], tbb: [Double] = [], tdf: [Double] = [], tdb: [Double] = []
            _ = baseline.forward(x, mode: .training); _ = decoupled.forward(x, mode: .training)
            for _ in 0..<reps {
                tSgemm.append(
                    time {
                        for _ in 0..<batch {
                            BLAS.sgemm(.none, .none, m: K, n: P, k: CRS, a: a, b: b, c: out)
                            BLAS.sgemm(.none, .transpose, m: K, n: CRS, k: P, a: out, b: b, beta: 1, c: da)
                            BLAS.sgemm(.transpose, .none, m: CRS, n: P, k: K, a: a, b: out, c: db)
                        }
                    })
                tbf.append(time { _ = baseline.forward(x, mode: .training) })
                tbb.append(time { _ = baseline.backward(dy, needInputGradient: true) })
                tdf.append(time { _ = decoupled.forward(x, mode: .training) })
                tdb.append(time { _ = decoupled.backward(dy, needInputGradient: true) })
            }
            let sg = 3 * flopsForward / median(tSgemm) / 1e9
            let bf = flopsForward / median(tbf) / 1e9, bb = 2 * flopsForward / median(tbb) / 1e9
            let df = flopsForward / median(tdf) / 1e9, dbw = 2 * flopsForward / median(tdb) / 1e9
            let dcTotal = median(tdf) + median(tdb), baseTotal = median(tbf) + median(tbb)
            let dcRate = 3 * flopsForward / dcTotal / 1e9
            let ratio = dcRate / sg, timeRatio = dcTotal / baseTotal
            minRatio = min(minRatio, ratio); maxTimeRatio = max(maxTimeRatio, timeRatio)
            print(
                pad("\(c.size)×\(c.size)×\(c.channels)", 16) + pad(f(sg), 11) + pad(f(bf), 10) + pad(f(bb), 10)
                    + pad(f(df), 10) + pad(f(dbw), 10) + pad(String(format: "%.3f", ratio), 10)
                    + pad(String(format: "%.3f", timeRatio), 13))
        }
        print("")
        print("conv-decoupled-vs-sgemm-min: \(String(format: "%.3f", minRatio))")
        print("conv-decoupled-vs-baseline-max: \(String(format: "%.3f", maxTimeRatio))")
    }

    static func time(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
    static func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
    static func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
    }
}
