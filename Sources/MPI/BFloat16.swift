import CMPI

/// A bfloat16 number (the top 16 bits of a Float: same 8-bit exponent, 7-bit mantissa), the wire
/// format of compressed all-reduces: half the bytes of Float with Float's range, so small values
/// do not underflow the way they do in fp16.
///
/// MPI has no bfloat16 type; buffers travel as 16-bit words and reduce through user-defined
/// operations that widen each pair to Float, combine, and round back to nearest even. A sum over
/// N ranks therefore rounds N-1 times (relative error about (N-1)·2⁻⁹ in the worst case).
@frozen
public struct BFloat16: MPIScalar, Hashable, Sendable {
    public var bitPattern: UInt16

    @inlinable public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// Rounds to nearest, ties to even; NaN stays NaN (quiet), infinities stay infinite.
    @inlinable @inline(__always)
    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        } else {
            let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
            bitPattern = UInt16(truncatingIfNeeded: rounded >> 16)
        }
    }

    @inlinable @inline(__always)
    public var float: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    @inlinable public static var mpiDatatype: MPI_Datatype { dcnet_mpi_uint16() }

    @inlinable public static func mpiOp(_ op: ReductionOp) -> MPI_Op {
        switch op {
        case .sum: BFloat16Reductions.sum
        case .max: BFloat16Reductions.max
        case .min: BFloat16Reductions.min
        }
    }
}

/// The user-defined MPI operations on bfloat16 words, created on first use (MPI must be running).
/// They stay valid until MPI_Finalize, which frees them.
@usableFromInline
enum BFloat16Reductions {
    // MPI calls a user function with no context argument, so each operation is its own C function.
    @usableFromInline nonisolated(unsafe) static let sum = create { a, b, n, _ in combine(a, b, n) { $0 + $1 } }
    @usableFromInline nonisolated(unsafe) static let max = create { a, b, n, _ in combine(a, b, n) { Swift.max($0, $1) }
    }
    @usableFromInline nonisolated(unsafe) static let min = create { a, b, n, _ in combine(a, b, n) { Swift.min($0, $1) }
    }

    typealias UserFunction =
        @convention(c) (
            UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
            UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<MPI_Datatype?>?
        ) -> Void

    private static func create(_ function: UserFunction) -> MPI_Op {
        var op: MPI_Op? = nil
        let status = MPI_Op_create(function, 1, &op)
        precondition(
            status == dcnet_mpi_success() && op != nil,
            "MPI_Op_create for bfloat16 failed (error \(status)); is MPI initialized?")
        return op!
    }

    /// inout[i] = round(f(in[i], inout[i])) in Float.
    @inline(__always)
    static func combine(
        _ input: UnsafeMutableRawPointer?, _ inout_: UnsafeMutableRawPointer?,
        _ count: UnsafeMutablePointer<Int32>?, _ f: (Float, Float) -> Float
    ) {
        guard let input, let inout_, let count else { return }
        let a = input.assumingMemoryBound(to: UInt16.self), b = inout_.assumingMemoryBound(to: UInt16.self)
        for i in 0..<Int(count.pointee) {
            b[i] = BFloat16(f(BFloat16(bitPattern: a[i]).float, BFloat16(bitPattern: b[i]).float)).bitPattern
        }
    }
}
