import CMPI

/// Element types the collectives can move and reduce.
///
/// The conformance is the single source of truth for the `MPI_Datatype`, so a
/// buffer's Swift type and the type MPI is told can never disagree.
public protocol MPIScalar: BitwiseCopyable {
    static var mpiDatatype: MPI_Datatype { get }
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
/// Also the transport type for fp16/bf16 gradient compression. MPI reduces it as an
/// unsigned integer, which is meaningless for fp16/bf16 bit patterns: move such
/// buffers (broadcast, allGather) and reduce after widening to Float.
extension UInt16: MPIScalar {
    @inlinable public static var mpiDatatype: MPI_Datatype { dcnet_mpi_uint16() }
}

/// The predefined reductions the trainer needs.
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
