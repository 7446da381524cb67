import CMPI

/// Element types the collectives can move and reduce.
///
/// The conformance is the single source of truth for the `MPI_Datatype`, so a
/// buffer's Swift type and the type MPI is told can never disagree.
public protocol MPIScalar: BitwiseCopyable {
    static var mpiDatatype: MPI_Datatype { get }
    /// The MPI operation that performs `op` on this type (the predefined one unless the type
    /// needs a user-defined reduction, like `BFloat16`).
    static func mpiOp(_ op: ReductionOp) -> MPI_Op
}

extension MPIScalar {
    @inlinable public static func mpiOp(_ op: ReductionOp) -> MPI_Op { op.handle }
}

extension Float: MPIScalar {
    @inlinable public static var mpiDatatype: MPI_Datatype { dcnet_mpi_float() }
}
extension Double: MPIScalar {
    @inlinable public static var mpiDatatype: MPI_Datatype { dcnet_mpi_double() }
}
extension Int32: MPIScalar {
    @inlinable public static var mpiDatatype: MPI_Datatype { dcnet_mpi_int32() }
}
extension Int64: MPIScalar {
    @inlinable public static var mpiDatatype: MPI_Datatype { dcnet_mpi_int64() }
}
/// `Int` is 64-bit on every platform this project builds for.
extension Int: MPIScalar {
    @inlinable public static var mpiDatatype: MPI_Datatype { dcnet_mpi_int64() }
}
extension UInt8: MPIScalar {
    @inlinable public static var mpiDatatype: MPI_Datatype { dcnet_mpi_uint8() }
}
/// Reduced as an unsigned integer; bfloat16 data travels as `BFloat16`, which reduces as numbers.
extension UInt16: MPIScalar {
    @inlinable public static var mpiDatatype: MPI_Datatype { dcnet_mpi_uint16() }
}

/// The predefined MPI reductions this wrapper offers.
public enum ReductionOp: Sendable, Hashable {
    case sum, max, min

    @inlinable public var handle: MPI_Op {
        switch self {
        case .sum: dcnet_mpi_sum()
        case .max: dcnet_mpi_max()
        case .min: dcnet_mpi_min()
        }
    }
}
