import BLAS

/// The arithmetic of the GEMMs of convolutions and linear layers. Everything else (master weights,
/// optimizer, BatchNorm, the decoupled operator's element-wise math, loss, all-reduce) is fp32
/// whatever this says.
public enum Precision: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// OpenBLAS sgemm.
    case fp32
    /// bf16 operands, fp32 accumulation and result: oneDNN's matmul (`OneDNN` must be available).
    case bf16
    /// The same rounding of the operands to bf16, multiplied by OpenBLAS sgemm in fp32: runs on
    /// every host, so tests can check bf16 numerics (and the hardware path) anywhere.
    case bf16Reference = "bf16-reference"

    public var description: String { rawValue }
    /// Whether the GEMM operands are rounded to bf16.
    public var roundsOperands: Bool { self != .fp32 }
}

/// A GEMM operand that may already be bf16 (converted once and used by several products, as the
/// Winograd transforms are).
public enum GEMMOperand {
    case fp32(UnsafePointer<Float>)
    case bf16(UnsafePointer<UInt16>)

    /// The operand `count` elements further on.
    @inlinable @inline(__always)
    public func offset(by count: Int) -> GEMMOperand {
        switch self {
        case .fp32(let x): return .fp32(x + count)
        case .bf16(let w): return .bf16(w + count)
        }
    }
}

/// The one GEMM entry point of the layers: C[m×n] = alpha·op(A)[m×k]·op(B)[k×n] + beta·C,
/// row-major, with the arithmetic of `precision`. fp32 is `BLAS.sgemm` itself (one comparison
/// before it); bf16 rounds the operands into scratch words (unless they come as bf16) and runs a
/// cached oneDNN matmul primitive of that shape.
public struct GEMM: Sendable {
    public let precision: Precision

    public init(_ precision: Precision) {
        if precision == .bf16, case .unavailable(let reason) = OneDNN.availability {
            fatalError("bf16 GEMMs need oneDNN: \(reason)")
        }
        self.precision = precision
    }

    public static let fp32 = GEMM(.fp32)

    /// `x` as an operand of this GEMM: rounded once into `words` (count elements, packed) when the
    /// precision rounds operands and `words` is given, else as it is. Rounding once serves every
    /// product that reads the same operand.
    @inlinable @inline(__always)
    public func operand(_ x: UnsafePointer<Float>, count: Int, words: UnsafeMutablePointer<UInt16>?) -> GEMMOperand {
        guard precision.roundsOperands, let words else { return .fp32(x) }
        BFloat16Conversion.round(x, count: count, into: words)
        return .bf16(UnsafePointer(words))
    }

    @inlinable @inline(__always)
    public func callAsFunction(
        _ transA: BLAS.Transpose, _ transB: BLAS.Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        if precision == .fp32 {
            BLAS.sgemm(
                transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
                ldc: ldc)
        } else {
            BF16GEMM.shared.multiply(
                precision, transA, transB, m: m, n: n, k: k, alpha: alpha, a: .fp32(a), lda: lda, b: .fp32(b),
                ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// The same product with operands that may already be bf16 words (a bf16 operand's leading
    /// dimension is its packed one). In fp32 both must be fp32, and this is `BLAS.sgemm`.
    @inlinable
    public func callAsFunction(
        _ transA: BLAS.Transpose, _ transB: BLAS.Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: GEMMOperand, lda: Int? = nil,
        b: GEMMOperand, ldb: Int? = nil,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        if precision == .fp32 {
            guard case .fp32(let a) = a, case .fp32(let b) = b else { fatalError("bf16 operands in an fp32 GEMM") }
            BLAS.sgemm(
                transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
                ldc: ldc)
            return
        }
        BF16GEMM.shared.multiply(
            precision, transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
            c: c, ldc: ldc)
    }
}

extension GEMM {
    /// `count` products with packed operands, the i-th C + i·strideC = op(A + i·strideA)·op(B + i·strideB)
    /// (+ beta·C): the 36 per-point products of a Winograd chunk. fp32 and the reference path loop over
    /// the products; oneDNN runs them as one batched matmul, which saves its per-call overhead on these
    /// small products. Each stride must be at least its matrix's size (the batch is contiguous).
    public func batched(
        count: Int, _ transA: BLAS.Transpose, _ transB: BLAS.Transpose, m: Int, n: Int, k: Int,
        a: GEMMOperand, strideA: Int, b: GEMMOperand, strideB: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, strideC: Int
    ) {
        alwaysPrecondition(strideA >= m * k && strideB >= k * n && strideC >= m * n, "overlapping batch")
        if precision == .bf16 && count > 1 && m > 0 && n > 0 && k > 0 {
            BF16GEMM.shared.multiplyBatched(
                count: count, transA, transB, m: m, n: n, k: k, a: a, strideA: strideA, b: b, strideB: strideB,
                beta: beta, c: c, strideC: strideC)
            return
        }
        for i in 0..<count {
            self(
                transA, transB, m: m, n: n, k: k, a: a.offset(by: i * strideA), b: b.offset(by: i * strideB),
                beta: beta, c: c + i * strideC)
        }
    }
}

/// The state of bf16 GEMMs in this process: oneDNN primitives by shape, and the scratch the
/// operands are rounded into. A rank runs its GEMMs on one thread, so one instance serves every
/// layer; buffers grow to the largest operand seen (in a network's first step) and stay.
@usableFromInline
final class BF16GEMM: @unchecked Sendable {
    @usableFromInline static let shared = BF16GEMM()

    private struct Key: Hashable {
        var transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
        var alpha: UInt32, beta: UInt32
        var batch = 1, strideA = 0, strideB = 0, strideC = 0
    }
    private var primitives: [Key: BF16Matmul] = [:]
    private var words: (a: UnsafeMutablePointer<UInt16>?, b: UnsafeMutablePointer<UInt16>?) = (nil, nil)
    private var wordCapacity = (a: 0, b: 0)
    private var floats: (a: UnsafeMutablePointer<Float>?, b: UnsafeMutablePointer<Float>?) = (nil, nil)
    private var floatCapacity = (a: 0, b: 0)

    /// The oneDNN implementations chosen so far (for reports and tests).
    var implementations: Set<String> { Set(primitives.values.map(\.implementation)) }

    private static func grow<T>(_ p: inout UnsafeMutablePointer<T>?, _ capacity: inout Int, _ count: Int)
        -> UnsafeMutablePointer<T>
    {
        if let p, capacity >= count { return p }
        p?.deallocate()
        let n = max(count, 2 * capacity)
        p = .allocate(capacity: n)
        capacity = n
        return p!
    }

    @usableFromInline
    func multiply(
        _ precision: Precision, _ transA: BLAS.Transpose, _ transB: BLAS.Transpose,
        m: Int, n: Int, k: Int, alpha: Float, a: GEMMOperand, lda: Int?, b: GEMMOperand, ldb: Int?,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int?
    ) {
        guard m > 0, n > 0 else { return }
        // Stored shapes: op(A) is m×k, so A is k×m when transposed; likewise B.
        let aRows = transA == .none ? m : k, aColumns = transA == .none ? k : m
        let bRows = transB == .none ? k : n, bColumns = transB == .none ? n : k
        let ldc = ldc ?? n
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        switch precision {
        case .fp32:
            fatalError("unreachable: fp32 GEMMs go to BLAS.sgemm")
        case .bf16Reference:
            let ra = Self.grow(&floats.a, &floatCapacity.a, aRows * aColumns)
            let rb = Self.grow(&floats.b, &floatCapacity.b, bRows * bColumns)
            Self.roundedFloats(a, rows: aRows, columns: aColumns, ld: lda ?? aColumns, into: ra)
            Self.roundedFloats(b, rows: bRows, columns: bColumns, ld: ldb ?? bColumns, into: rb)
            BLAS.sgemm(
                transA, transB, m: m, n: n, k: k, alpha: alpha, a: ra, lda: aColumns, b: rb, ldb: bColumns,
                beta: beta, c: c, ldc: ldc)
        case .bf16:
            let (wa, packedA) = words(a, rows: aRows, columns: aColumns, ld: lda, slot: 0)
            let (wb, packedB) = words(b, rows: bRows, columns: bColumns, ld: ldb, slot: 1)
            let key = Key(
                transA: transA == .transpose, transB: transB == .transpose, m: m, n: n, k: k, lda: packedA,
                ldb: packedB, ldc: ldc, alpha: alpha.bitPattern, beta: beta.bitPattern)
            let matmul = primitive(key) {
                try BF16Matmul(
                    transA, transB, m: m, n: n, k: k, alpha: alpha, lda: packedA, ldb: packedB, beta: beta, ldc: ldc)
            }
            matmul(a: wa, b: wb, c: c)
        }
    }

    func multiplyBatched(
        count: Int, _ transA: BLAS.Transpose, _ transB: BLAS.Transpose, m: Int, n: Int, k: Int,
        a: GEMMOperand, strideA: Int, b: GEMMOperand, strideB: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, strideC: Int
    ) {
        let aColumns = transA == .none ? k : m, bColumns = transB == .none ? n : k
        let (wa, _) = words(a, rows: 1, columns: count * strideA, ld: nil, slot: 0)
        let (wb, _) = words(b, rows: 1, columns: count * strideB, ld: nil, slot: 1)
        let key = Key(
            transA: transA == .transpose, transB: transB == .transpose, m: m, n: n, k: k, lda: aColumns,
            ldb: bColumns, ldc: n, alpha: Float(1).bitPattern, beta: beta.bitPattern, batch: count,
            strideA: strideA, strideB: strideB, strideC: strideC)
        let matmul = primitive(key) {
            try BF16Matmul(
                transA, transB, m: m, n: n, k: k, lda: aColumns, ldb: bColumns, beta: beta, ldc: n, batch: count,
                strides: (strideA, strideB, strideC))
        }
        matmul(a: wa, b: wb, c: c)
    }

    /// The cached primitive of `key`, made on first use. A primitive oneDNN cannot make for a shape
    /// that availability was checked for is a bug, not an input error.
    private func primitive(_ key: Key, _ make: () throws -> BF16Matmul) -> BF16Matmul {
        if let cached = primitives[key] { return cached }
        do {
            let made = try make()
            primitives[key] = made
            return made
        } catch {
            fatalError("\(error)")
        }
    }

    /// The operand as bf16 words and their leading dimension: as given, or rounded into scratch.
    private func words(_ operand: GEMMOperand, rows: Int, columns: Int, ld: Int?, slot: Int)
        -> (UnsafePointer<UInt16>, Int)
    {
        switch operand {
        case .bf16(let w):
            return (w, ld ?? columns)
        case .fp32(let x):
            let w =
                slot == 0
                ? Self.grow(&words.a, &wordCapacity.a, rows * columns)
                : Self.grow(&words.b, &wordCapacity.b, rows * columns)
            BFloat16Conversion.round(x, rows: rows, columns: columns, ld: ld ?? columns, into: w)
            return (UnsafePointer(w), columns)
        }
    }

    private static func roundedFloats(
        _ operand: GEMMOperand, rows: Int, columns: Int, ld: Int, into y: UnsafeMutablePointer<Float>
    ) {
        switch operand {
        case .fp32(let x):
            BFloat16Conversion.roundInFloat(x, rows: rows, columns: columns, ld: ld, into: y)
        case .bf16(let w):
            for r in 0..<rows { BFloat16Conversion.widen(w + r * ld, count: columns, into: y + r * columns) }
        }
    }
}
