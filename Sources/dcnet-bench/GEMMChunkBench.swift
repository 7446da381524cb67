import BLAS
import DCNetData
import Foundation

/// `scripts/bench gemm`: per-image versus per-chunk GEMMs for the CNN-9 convolutions. A chunk of c
/// images packs c column matrices side by side, so the three GEMMs of a training step get an N
/// dimension c times larger; the question is whether that beats the cache-friendly per-image
/// shape. Raw sgemm only (packing and layout copies would come on top), one thread, batch 64.
enum GEMMChunkBench {
    static func run() throws {
        let reps = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 5
        BLAS.threadCount = 1
        print("GEMM chunk benchmark: the forward, filter-gradient and input-gradient GEMMs of a 3×3 stride-1")
        print("convolution over a batch of 64, in chunks of c images; GFLOP/s of the three, median of \(reps)")
        print("")
        let chunks = [1, 2, 4, 8, 16, 64]
        print(ConvBench.pad("layer", 14) + chunks.map { ConvBench.pad("c=\($0)", 9) }.joined() + "best")
        var results: [(String, Int, Double)] = []
        for c in ConvBench.cases {
            let K = c.channels, CRS = c.channels * 9, P = c.size * c.size, batch = 64
            var rng = Xoshiro256StarStar(seed: 3)
            var line = ConvBench.pad("\(c.size)×\(c.size)×\(c.channels)", 14)
            var rates: [Int: Double] = [:]
            for chunk in chunks {
                let N = P * chunk
                let a = UnsafeMutablePointer<Float>.allocate(capacity: K * CRS)
                let b = UnsafeMutablePointer<Float>.allocate(capacity: CRS * N)
                let out = UnsafeMutablePointer<Float>.allocate(capacity: K * N)
                let db = UnsafeMutablePointer<Float>.allocate(capacity: CRS * N)
                let da = UnsafeMutablePointer<Float>.allocate(capacity: K * CRS)
                defer { for p in [a, b, out, db, da] { p.deallocate() } }
                for i in 0..<(K * CRS) { a[i] = Float.random(in: -1...1, using: &rng); da[i] = 0 }
                for i in 0..<(CRS * N) { b[i] = Float.random(in: -1...1, using: &rng) }
                var times: [Double] = []
                for _ in 0..<reps {
                    times.append(
                        ConvBench.time {
                            for _ in 0..<(batch / chunk) {
                                BLAS.sgemm(.none, .none, m: K, n: N, k: CRS, a: a, b: b, c: out)
                                BLAS.sgemm(.none, .transpose, m: K, n: CRS, k: N, a: out, b: b, beta: 1, c: da)
                                BLAS.sgemm(.transpose, .none, m: CRS, n: N, k: K, a: a, b: out, c: db)
                            }
                        })
                }
                let rate = 3 * 2 * Double(K * CRS * P * batch) / ConvBench.median(times) / 1e9
                rates[chunk] = rate
                line += ConvBench.pad(ConvBench.f(rate), 9)
            }
            let best = rates.max { $0.value < $1.value }!
            print(line + "c=\(best.key)")
            results.append(("\(c.size)x\(c.size)x\(c.channels)", best.key, best.value / rates[1]!))
        }
        print("")
        for (name, chunk, gain) in results {
            print("gemm-best-chunk-\(name): \(chunk)")
            print("gemm-best-chunk-vs-per-image-\(name): \(String(format: "%.3f", gain))")
        }
    }
}
