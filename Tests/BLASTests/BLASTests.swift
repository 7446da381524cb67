import XCTest

@testable import BLAS

final class BLASTests: XCTestCase {
    /// Deterministic values in [-1, 1) so results are reproducible and well scaled.
    private func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
        }
    }

    /// Naive row-major reference in Double.
    private func referenceGemm(
        _ ta: BLAS.Transpose, _ tb: BLAS.Transpose, m: Int, n: Int, k: Int,
        alpha: Double, a: [Float], b: [Float], beta: Double, c: [Float]
    ) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k {
                    let aip = ta == .none ? a[i * k + p] : a[p * m + i]
                    let bpj = tb == .none ? b[p * n + j] : b[j * k + p]
                    acc += Double(aip) * Double(bpj)
                }
                out[i * n + j] = alpha * acc + beta * Double(c[i * n + j])
            }
        }
        return out
    }

    func testSgemmAllTransposesAndSizes() {
        let shapes = [(1, 1, 1), (3, 5, 7), (65, 33, 129)]
        let alpha: Float = 0.75, beta: Float = -1.25
        for (m, n, k) in shapes {
            for ta in [BLAS.Transpose.none, .transpose] {
                for tb in [BLAS.Transpose.none, .transpose] {
                    let a = values(m * k, seed: 1), b = values(k * n, seed: 2), c0 = values(m * n, seed: 3)
                    var c = c0
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in
                            c.withUnsafeMutableBufferPointer { pc in
                                BLAS.sgemm(
                                    ta, tb, m: m, n: n, k: k, alpha: alpha,
                                    a: pa.baseAddress!, b: pb.baseAddress!,
                                    beta: beta, c: pc.baseAddress!)
                            }
                        }
                    }
                    let want = referenceGemm(
                        ta, tb, m: m, n: n, k: k, alpha: Double(alpha),
                        a: a, b: b, beta: Double(beta), c: c0)
                    // Relative to the magnitude of the terms, since entries can cancel to ~0.
                    let scale = max(1.0, want.map(abs).max() ?? 1)
                    let worst = zip(c, want).map { abs(Double($0) - $1) / scale }.max() ?? 0
                    XCTAssertLessThan(worst, 1e-5, "sgemm \(ta)×\(tb) m=\(m) n=\(n) k=\(k)")
                }
            }
        }
    }

    func testSgemmWithLeadingDimensions() {
        // A 2×3 view into a 2×5 row-major matrix, B 3×2 packed, C 2×2 inside 2×4.
        let a: [Float] = [
            1, 2, 3, 99, 99,
            4, 5, 6, 99, 99,
        ]
        let b: [Float] = [
            1, 0,
            0, 1,
            1, 1,
        ]
        var c: [Float] = [
            10, 10, -1, -1,
            10, 10, -1, -1,
        ]
        BLAS.sgemm(
            .none, .none, m: 2, n: 2, k: 3, alpha: 2, a: a, lda: 5, b: b,
            beta: 0.5, c: &c, ldc: 4)
        XCTAssertEqual(
            c,
            [
                13, 15, -1, -1,
                25, 27, -1, -1,
            ])
    }

    func testSgemmWithZeroKScalesC() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [0], b: [Float] = [0]
        BLAS.sgemm(.none, .none, m: 2, n: 2, k: 0, a: a, b: b, beta: 3, c: &c)
        XCTAssertEqual(c, [3, 6, 9, 12])
    }

    func testSaxpy() {
        let x = values(1001, seed: 4)
        var y = values(1001, seed: 5)
        let y0 = y
        BLAS.saxpy(count: x.count, alpha: -0.5, x: x, y: &y)
        for i in 0..<x.count {
            XCTAssertEqual(y[i], y0[i] - 0.5 * x[i], accuracy: 1e-6)
        }
        BLAS.saxpy(count: 0, alpha: 1, x: x, y: &y)  // no-op
    }

    func testSscal() {
        var x = values(777, seed: 6)
        let x0 = x
        BLAS.sscal(count: x.count, alpha: 3.5, x: &x)
        for i in 0..<x.count { XCTAssertEqual(x[i], 3.5 * x0[i], accuracy: 1e-6) }
    }

    func testSdot() {
        let x = values(4099, seed: 7), y = values(4099, seed: 8)
        let want = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let got = BLAS.sdot(count: x.count, x: x, y: y)
        XCTAssertEqual(Double(got), want, accuracy: 1e-3)
        XCTAssertEqual(BLAS.sdot(count: 0, x: x, y: y), 0)
        XCTAssertEqual(BLAS.sdot(count: 3, x: [1, 2, 3], y: [4, 5, 6]), 32)
    }

    func testThreadCount() {
        let original = BLAS.threadCount
        defer { BLAS.threadCount = original }
        XCTAssertGreaterThanOrEqual(original, 1)
        BLAS.threadCount = 1
        XCTAssertEqual(BLAS.threadCount, 1)
        BLAS.threadCount = 0  // clamped to 1
        XCTAssertEqual(BLAS.threadCount, 1)
        BLAS.threadCount = 2
        XCTAssertEqual(BLAS.threadCount, 2)
    }
}
