import BLAS
import DCNetRandom
import DCNetTensor
import XCTest

/// bf16 compute's GEMMs: the conversion kernels, the reference path (operands rounded to bf16,
/// multiplied by sgemm) on every host, and oneDNN's matmul against it and against fp32 where the
/// CPU has native bf16 dot products.
///
/// Tolerances are element-wise bounds from the rounding: each operand carries relative error at
/// most u = 2⁻⁸ (the tests take one bf16 unit, twice the round-to-nearest bound), so a product a·b
/// is off by at most (2u + u²)·|a·b|, and an fp32 sum of k terms adds at most k·2⁻²⁴ of Σ|a·b|
/// per order of summation. So |C − C_exact| ≤ (2u + u² + 2k·2⁻²⁴)·Σ_p |a_ip·b_pj| (+ the beta term).
final class BF16GEMMTests: XCTestCase {
    static let operandError = 1.0 / 256

    /// Why the hardware path cannot run here, or nil.
    static var hardwareSkipReason: String? {
        if !CPUBF16Features.host.hasNativeBF16 {
            return "this CPU has \(CPUBF16Features.host) (no AVX512-BF16 or AMX-BF16): oneDNN's bf16 path is not run"
        }
        if case .unavailable(let reason) = OneDNN.availability {
            return "oneDNN is not available (\(reason)); apt-get install libdnnl-dev to run this test"
        }
        return nil
    }

    private func random(_ count: Int, _ rng: inout SplitMix64) -> [Float] {
        (0..<count).map { _ in Float(rng.nextNormal()) }
    }

    private struct Case {
        var transA: BLAS.Transpose, transB: BLAS.Transpose, m: Int, n: Int, k: Int
        var alpha: Float = 1, beta: Float = 0, padA = 0, padB = 0, padC = 0
    }

    private static let cases: [Case] = [
        Case(transA: .none, transB: .none, m: 64, n: 128, k: 64),
        Case(transA: .none, transB: .transpose, m: 33, n: 17, k: 129, beta: 1),
        Case(transA: .transpose, transB: .none, m: 40, n: 70, k: 300, beta: 1),
        Case(transA: .transpose, transB: .transpose, m: 9, n: 31, k: 27, alpha: 0.5, beta: -2),
        Case(transA: .none, transB: .none, m: 16, n: 36, k: 576, beta: 1, padA: 3, padB: 5, padC: 2),
        Case(transA: .none, transB: .transpose, m: 1, n: 1, k: 1),
        Case(transA: .none, transB: .none, m: 32, n: 96, k: 1152),
    ]

    /// Runs `precision`'s GEMM on case `t` and returns C, the exact product of the fp32 operands
    /// (Double), the exact product of the bf16-rounded operands, and Σ|a·b| per element.
    private func run(_ t: Case, _ precision: Precision, seed: UInt64 = 1, preconverted: Bool = false)
        -> (c: [Float], exact: [Double], roundedExact: [Double], magnitude: [Double])
    {
        var rng = SplitMix64(seed: seed)
        let aRows = t.transA == .none ? t.m : t.k, aColumns = t.transA == .none ? t.k : t.m
        let bRows = t.transB == .none ? t.k : t.n, bColumns = t.transB == .none ? t.n : t.k
        let lda = aColumns + t.padA, ldb = bColumns + t.padB, ldc = t.n + t.padC
        let a = random(aRows * lda, &rng), b = random(bRows * ldb, &rng)
        var c = random(t.m * ldc, &rng)
        let c0 = c
        func element(_ x: [Float], _ ld: Int, _ trans: BLAS.Transpose, _ i: Int, _ j: Int) -> Float {
            trans == .none ? x[i * ld + j] : x[j * ld + i]
        }
        var exact = [Double](repeating: 0, count: t.m * t.n), roundedExact = exact, magnitude = exact
        for i in 0..<t.m {
            for j in 0..<t.n {
                var e = 0.0, r = 0.0, s = 0.0
                for p in 0..<t.k {
                    let x = element(a, lda, t.transA, i, p), y = element(b, ldb, t.transB, p, j)
                    e += Double(x) * Double(y)
                    r += Double(BFloat16Conversion.rounded(x)) * Double(BFloat16Conversion.rounded(y))
                    s += abs(Double(x) * Double(y))
                }
                let bias = Double(t.beta) * Double(c0[i * ldc + j])
                exact[i * t.n + j] = Double(t.alpha) * e + bias
                roundedExact[i * t.n + j] = Double(t.alpha) * r + bias
                magnitude[i * t.n + j] = abs(Double(t.alpha)) * s + abs(bias)
            }
        }
        let gemm = GEMM(precision)
        if preconverted {
            var wa = [UInt16](repeating: 0, count: a.count), wb = [UInt16](repeating: 0, count: b.count)
            BFloat16Conversion.round(a, count: a.count, into: &wa)
            BFloat16Conversion.round(b, count: b.count, into: &wb)
            wa.withUnsafeBufferPointer { pa in
                wb.withUnsafeBufferPointer { pb in
                    gemm(
                        t.transA, t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha, a: .bf16(pa.baseAddress!),
                        lda: lda, b: .bf16(pb.baseAddress!), ldb: ldb, beta: t.beta, c: &c, ldc: ldc)
                }
            }
        } else {
            gemm(
                t.transA, t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha, a: a, lda: lda, b: b, ldb: ldb,
                beta: t.beta, c: &c, ldc: ldc)
        }
        let packed = (0..<t.m).flatMap { i in c[(i * ldc)..<(i * ldc + t.n)] }
        // The padding of C stays untouched.
        for i in 0..<t.m { for j in t.n..<ldc { XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j]) } }
        return (packed, exact, roundedExact, magnitude)
    }

    /// Worst |got − want| / bound over the elements (≤ 1 passes).
    private func worstRatio(_ got: [Float], _ want: [Double], _ magnitude: [Double], relative: Double) -> Double {
        zip(zip(got, want), magnitude).map { pair, s in
            abs(Double(pair.0) - pair.1) / max(relative * s, 1e-30)
        }.max() ?? 0
    }

    func testConversionRoundsToNearestEvenAndKeepsSpecials() {
        typealias C = BFloat16Conversion
        XCTAssertEqual(C.word(1), 0x3F80)
        XCTAssertEqual(C.word(-2), 0xC000)
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
        XCTAssertEqual(C.word(1 + 1.0 / 256), 0x3F80)
        // 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ (odd) and 1 + 2⁻⁶ (even): rounds up.
        XCTAssertEqual(C.word(1 + 3.0 / 256), 0x3F82)
        XCTAssertEqual(C.word(Float(bitPattern: 0x3F80_8001)), 0x3F81)  // just above the tie
        XCTAssertEqual(C.word(.infinity), 0x7F80)
        XCTAssertEqual(C.word(-.infinity), 0xFF80)
        XCTAssertEqual(C.word(.greatestFiniteMagnitude), 0x7F80)  // overflows to infinity
        XCTAssertEqual(C.word(0), 0); XCTAssertEqual(C.word(-0.0), 0x8000)
        XCTAssertEqual(C.word(.leastNonzeroMagnitude), 0)
        for nan in [Float.nan, -Float.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFC0_1234)] {
            XCTAssertTrue(C.float(C.word(nan)).isNaN, "\(nan.bitPattern)")
            XCTAssertEqual(C.word(nan) & 0x8000, UInt16(nan.bitPattern >> 31) << 15, "sign kept")
        }
        // The kernels agree with the scalar conversion on a run of odd lengths, and widening is exact.
        var rng = SplitMix64(seed: 3)
        let x = random(1001, &rng).map { $0 * 1e3 } + [.nan, .infinity, 1e38, 3e38]
        var w = [UInt16](repeating: 0, count: x.count), back = [Float](repeating: 0, count: x.count)
        BFloat16Conversion.round(x, count: x.count, into: &w)
        BFloat16Conversion.widen(w, count: w.count, into: &back)
        for i in x.indices {
            XCTAssertEqual(w[i], C.word(x[i]))
            if x[i].isFinite && abs(x[i]) < 1e38 {
                XCTAssertLessThanOrEqual(abs(back[i] - x[i]), abs(x[i]) / 256, "\(x[i])")
            }
        }
    }

    /// The reference path is the exact product of the rounded operands up to fp32 summation, and
    /// within the bf16 bound of the fp32 product; it really rounds (it differs from fp32).
    func testReferencePathMatchesTheRoundedProductOnEveryHost() {
        for t in Self.cases {
            let r = run(t, .bf16Reference)
            let sum = 2 * Double(t.k) * 0x1p-24 + 0x1p-24
            XCTAssertLessThanOrEqual(
                worstRatio(r.c, r.roundedExact, r.magnitude, relative: sum), 1, "rounded operands, \(t)")
            let bound = 2 * Self.operandError + Self.operandError * Self.operandError + sum
            XCTAssertLessThanOrEqual(worstRatio(r.c, r.exact, r.magnitude, relative: bound), 1, "vs fp32, \(t)")
            let fp32 = run(t, .fp32)
            if t.k > 1 { XCTAssertNotEqual(r.c, fp32.c, "the reference path rounds the operands: \(t)") }
            let pre = run(t, .bf16Reference, preconverted: true)
            XCTAssertEqual(pre.c, r.c, "operands given as bf16 words, \(t)")
        }
    }

    func testReferencePathKZeroScalesByBeta() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [0], b: [Float] = [0]
        GEMM(.bf16Reference)(.none, .none, m: 2, n: 2, k: 0, a: a, b: b, beta: 0.5, c: &c)
        XCTAssertEqual(c, [0.5, 1, 1.5, 2])
    }

    func testHardwarePathAgreesWithReferenceAndFP32() throws {
        if let reason = Self.hardwareSkipReason { throw XCTSkip(reason) }
        for t in Self.cases {
            for preconverted in [false, true] {
                let hw = run(t, .bf16, preconverted: preconverted), ref = run(t, .bf16Reference)
                // Same rounded operands, products exact in fp32: only the order of the fp32 sums differs.
                let sum = 2 * Double(t.k) * 0x1p-24 + 0x1p-24
                XCTAssertLessThanOrEqual(
                    worstRatio(hw.c, hw.roundedExact, hw.magnitude, relative: sum), 1, "rounded operands, \(t)")
                let bound = 2 * Self.operandError + Self.operandError * Self.operandError + sum
                XCTAssertLessThanOrEqual(worstRatio(hw.c, hw.exact, hw.magnitude, relative: bound), 1, "fp32, \(t)")
                let refBound = 2 * sum
                XCTAssertLessThanOrEqual(
                    worstRatio(hw.c, ref.c.map(Double.init), hw.magnitude, relative: refBound), 1, "reference, \(t)")
            }
        }
    }

    func testHardwarePathUsesNativeBF16Kernels() throws {
        if let reason = Self.hardwareSkipReason { throw XCTSkip(reason) }
        XCTAssertTrue(OneDNN.usesNativeBF16, "oneDNN dispatches to \(OneDNN.effectiveISA)")
        let m = try BF16Matmul(.none, .none, m: 64, n: 64, k: 64, lda: 64, ldb: 64, beta: 0, ldc: 64)
        XCTAssertFalse(m.implementation.contains("ref"), "oneDNN picked \(m.implementation)")
    }

    /// A batch of products in one oneDNN call (the Winograd products) equals the products one by one.
    func testBatchedProductsMatchOneByOne() throws {
        if let reason = Self.hardwareSkipReason { throw XCTSkip(reason) }
        var rng = SplitMix64(seed: 4)
        for (ta, tb, m, n, k, beta) in [
            (BLAS.Transpose.none, BLAS.Transpose.none, 16, 40, 24, Float(1)), (.none, .transpose, 16, 24, 40, 0),
            (.transpose, .none, 24, 40, 16, 1),
        ] {
            let count = 36
            let a = random(count * m * k, &rng), b = random(count * k * n, &rng), c0 = random(count * m * n, &rng)
            var wa = [UInt16](repeating: 0, count: a.count), wb = [UInt16](repeating: 0, count: b.count)
            BFloat16Conversion.round(a, count: a.count, into: &wa)
            BFloat16Conversion.round(b, count: b.count, into: &wb)
            var results: [[Float]] = []
            for precision in [Precision.bf16, .bf16Reference] {
                var c = c0
                wa.withUnsafeBufferPointer { pa in
                    wb.withUnsafeBufferPointer { pb in
                        GEMM(precision).batched(
                            count: count, ta, tb, m: m, n: n, k: k, a: .bf16(pa.baseAddress!), strideA: m * k,
                            b: .bf16(pb.baseAddress!), strideB: k * n, beta: beta, c: &c, strideC: m * n)
                    }
                }
                results.append(c)
            }
            let (batched, single) = (results[0], results[1])
            let scale = Double(k) * 0x1p-22
            for i in batched.indices {
                XCTAssertEqual(Double(batched[i]), Double(single[i]), accuracy: scale * (1 + abs(Double(single[i]))))
            }
        }
    }
}
