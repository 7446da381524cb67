import CMPI

/// A failed MPI call, or a call the wrapper refused before reaching MPI.
///
/// Every communicator this module touches uses `MPI_ERRORS_RETURN`, so MPI reports
/// failures as return codes instead of aborting the job; this type carries enough of
/// that code (class and MPI's own text) to diagnose a failure from a single log line.
///
/// Arguments that would make MPI read or write out of bounds (a root outside the
/// communicator, buffers whose lengths disagree) are rejected in Swift *before* any
/// MPI call. Those checks depend only on arguments that every rank passes alike, so
/// when one rank throws, all ranks throw and none is left waiting in a collective.
public struct MPIError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The MPI function (or wrapper entry point) that failed, e.g. `"MPI_Allreduce"`.
    public let operation: String
    /// The raw return code.
    public let code: Int32
    /// The error class of `code` (`MPI_ERR_ROOT`, `MPI_ERR_COUNT`, ...).
    public let errorClass: Int32
    /// `MPI_Error_string(code)`, or the wrapper's explanation for a refused call.
    public let message: String

    public init(operation: String, code: Int32, errorClass: Int32, message: String) {
        self.operation = operation
        self.code = code
        self.errorClass = errorClass
        self.message = message
    }

    /// Builds the error from a code returned by MPI, asking MPI for class and text.
    @usableFromInline
    init(operation: String, code: Int32) {
        var cls: Int32 = code
        if MPI_Error_class(code, &cls) != MPI_SUCCESS { cls = code }
        self.init(
            operation: operation, code: code, errorClass: cls,
            message: MPIError.errorString(code))
    }

    /// A call rejected in Swift; `code` is an MPI error class so callers can treat both alike.
    @usableFromInline
    static func refused(_ operation: String, _ errorClass: Int32, _ detail: String) -> MPIError {
        MPIError(
            operation: operation, code: errorClass, errorClass: errorClass,
            message: "\(errorString(errorClass)): \(detail)")
    }

    static func errorString(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &buffer, &length) == MPI_SUCCESS else {
            return "unknown MPI error \(code)"
        }
        let bytes = buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var description: String {
        "\(operation) failed: \(message) (code \(code), class \(errorClass))"
    }
}

/// The one place success is tested, kept inlinable so the hot path is a compare and
/// the error construction stays out of line.
@inlinable @inline(__always)
func mpiCheck(_ rc: Int32, _ operation: StaticString) throws(MPIError) {
    if _fastPath(rc == MPI_SUCCESS) { return }
    throw mpiFailure(rc, operation)
}

@usableFromInline @inline(never)
func mpiFailure(_ rc: Int32, _ operation: StaticString) -> MPIError {
    MPIError(operation: "\(operation)", code: rc)
}

/// MPI counts are `Int32`; a longer buffer must be split by the caller.
@inlinable @inline(__always)
func mpiCount(_ count: Int, _ operation: StaticString) throws(MPIError) -> Int32 {
    if _fastPath(count <= Int(Int32.max)) { return Int32(truncatingIfNeeded: count) }
    throw MPIError.refused(
        "\(operation)", MPI_ERR_COUNT,
        "\(count) elements exceed MPI's Int32 count; split the buffer")
}
