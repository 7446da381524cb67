import COpenBLAS

/// Thin, row-major wrappers over OpenBLAS's CBLAS interface.
///
/// Every routine takes raw pointers so callers can hand in views into one
/// preallocated arena without copies; dimensions follow the BLAS names.
public enum BLAS {
    public enum Transpose: Sendable {
        case none, transpose
        @inlinable var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
    }

    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C, all row-major.
    /// `lda`, `ldb`, `ldc` default to the packed leading dimensions.
    @inlinable
    public static func sgemm(
        _ transA: Transpose, _ transB: Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched when k == 0 only if beta == 1; make beta explicit.
            sscal(count: m * n, alpha: beta, x: c)
            return
        }
        let lda = lda ?? (transA == .none ? k : m)
        let ldb = ldb ?? (transB == .none ? n : k)
        let ldc = ldc ?? n
        cblas_sgemm(
            CblasRowMajor, transA.cblas, transB.cblas,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y += alpha · x
    @inlinable
    public static func saxpy(count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
    }

    /// x *= alpha
    @inlinable
    public static func sscal(count: Int, alpha: Float, x: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        cblas_sscal(Int32(count), alpha, x, 1)
    }

    /// Σ x·y, accumulated by OpenBLAS in single precision.
    @inlinable
    public static func sdot(count: Int, x: UnsafePointer<Float>, y: UnsafePointer<Float>) -> Float {
        guard count > 0 else { return 0 }
        return cblas_sdot(Int32(count), x, 1, y, 1)
    }

    /// Number of threads OpenBLAS uses for each call (process-wide).
    public static var threadCount: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }
}
