import _CDNNL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// oneDNN's bf16 matmul (bf16 operands, fp32 accumulation and result), loaded at run time.
///
/// The library is opened once, on first use, from `DCNET_DNNL_LIBRARY` if set (a test hook: a
/// missing name makes bf16 unavailable), else `libdnnl.so.2`. Nothing here runs unless bf16 is
/// asked for, so fp32 runs never touch oneDNN and need it neither to build nor to run.
public enum OneDNN {
    /// Whether oneDNN could be loaded, and if not, why.
    public enum Availability: Sendable, Equatable {
        case available(version: String)
        case unavailable(reason: String)
    }

    /// The library name tried: `DCNET_DNNL_LIBRARY`, or libdnnl.so.2.
    public static var libraryName: String {
        if let name = getenv("DCNET_DNNL_LIBRARY"), name.pointee != 0 { return String(cString: name) }
        return "libdnnl.so.2"
    }

    /// Loads the library on first use (every later call returns the first answer).
    public static let availability: Availability = {
        var error = [CChar](repeating: 0, count: 512)
        let status = libraryName.withCString { dcnet_dnnl_load($0, &error, error.count) }
        guard status == 0 else {
            return .unavailable(
                reason: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        dcnet_dnnl_version(&major, &minor, &patch)
        return .available(version: "\(major).\(minor).\(patch)")
    }()

    public static var isAvailable: Bool {
        if case .available = availability { return true }
        return false
    }

    /// oneDNN's name for the instruction set it dispatches to (after loading).
    public static var effectiveISA: String {
        switch dcnet_dnnl_effective_isa() {
        case 0: return "none"
        case 0x3e7: return "avx512_core_amx"
        case 0xe7: return "avx512_core_bf16"
        case 0x67: return "avx512_core_vnni"
        case 0x27: return "avx512_core"
        case 0x407: return "avx2_vnni"
        case 0x7: return "avx2"
        case let isa: return "isa 0x\(String(isa, radix: 16))"
        }
    }

    /// Whether oneDNN dispatches to native bf16 dot products (AVX512-BF16 or AMX).
    public static var usesNativeBF16: Bool {
        let isa = dcnet_dnnl_effective_isa()
        return isa & 0xe7 == 0xe7
    }

    /// OpenMP threads for oneDNN's calls (the rank's --threads), where its runtime allows it.
    public static func setThreads(_ threads: Int) { _ = dcnet_dnnl_set_threads(Int32(max(1, threads))) }
}

/// What the CPU offers for bf16 dot products, from cpuid (no library needed).
public struct CPUBF16Features: Sendable, Equatable, CustomStringConvertible {
    /// AVX512-BF16 (vdpbf16ps) usable: the CPU has it and the OS saves the AVX-512 state.
    public var avx512BF16: Bool
    /// AMX-BF16 tiles (Sapphire Rapids and later).
    public var amxBF16: Bool
    public var hasNativeBF16: Bool { avx512BF16 || amxBF16 }

    public static let host: CPUBF16Features = {
        let bits = dcnet_cpu_bf16_features()
        return CPUBF16Features(avx512BF16: bits & 1 != 0, amxBF16: bits & 2 != 0)
    }()

    public init(avx512BF16: Bool, amxBF16: Bool) { self.avx512BF16 = avx512BF16; self.amxBF16 = amxBF16 }

    public var description: String {
        let names = (avx512BF16 ? ["avx512_bf16"] : []) + (amxBF16 ? ["amx_bf16"] : [])
        return names.isEmpty ? "no bf16 instructions" : names.joined(separator: " + ")
    }
}

public struct OneDNNError: Error, CustomStringConvertible {
    public let description: String
}

/// One oneDNN matmul primitive of fixed shape, transposition, alpha, beta and leading dimensions:
/// C[m×n] = alpha·op(A)·op(B) + beta·C, row-major, A and B bf16 words, C Float. Owns the C handles
/// (released at deinit).
public final class BF16Matmul {
    private let handle: OpaquePointer
    public let implementation: String

    /// With `batch` > 1, that many products `strides` (elements of A, B, C) apart, in one call.
    public init(
        _ transA: BLAS.Transpose, _ transB: BLAS.Transpose, m: Int, n: Int, k: Int, alpha: Float = 1,
        lda: Int, ldb: Int, beta: Float, ldc: Int, batch: Int = 1, strides: (a: Int, b: Int, c: Int) = (0, 0, 0)
    ) throws {
        guard OneDNN.isAvailable else {
            if case .unavailable(let reason) = OneDNN.availability { throw OneDNNError(description: reason) }
            throw OneDNNError(description: "oneDNN is not loaded")
        }
        var error = [CChar](repeating: 0, count: 512)
        guard
            let handle = dcnet_dnnl_matmul_create(
                transA == .transpose ? 1 : 0, transB == .transpose ? 1 : 0, Int64(batch), Int64(m), Int64(n),
                Int64(k), alpha, Int64(lda), Int64(strides.a), Int64(ldb), Int64(strides.b), beta, Int64(ldc),
                Int64(strides.c), &error, error.count)
        else {
            throw OneDNNError(
                description: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        self.handle = handle
        implementation = String(cString: dcnet_dnnl_matmul_implementation(handle))
    }

    deinit { dcnet_dnnl_matmul_destroy(handle) }

    /// Runs the product on these buffers (shapes as at creation).
    @inline(__always)
    public func callAsFunction(a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, c: UnsafeMutablePointer<Float>) {
        let status = dcnet_dnnl_matmul_execute(handle, a, b, c)
        if status != 0 { fatalError("oneDNN matmul failed (dnnl_status_t \(status))") }
    }
}
