import CMPI

// Collectives over raw buffers and arrays.
//
// Buffer-pointer overloads are the primitive: they hand the caller's memory straight to
// MPI (a caller may pass views into an arena of its own). The `inout [T]` overloads go
// through `withUnsafe(Mutable)BufferPointer`, which also passes the array's storage
// without copying (a uniquely referenced array is not copied-on-write).
//
// Counts must agree across ranks; only what one rank can check alone is checked, and
// those checks come before any MPI call so a throwing call throws on every rank.

extension Communicator {
    // MARK: Validation shared by all ranks

    @inlinable @inline(__always)
    func checkRoot(_ root: Int, _ operation: StaticString) throws(MPIError) -> Int32 {
        if _fastPath(root >= 0 && root < size) { return Int32(truncatingIfNeeded: root) }
        throw MPIError.refused(
            "\(operation)", MPI_ERR_ROOT,
            "root \(root) is not a rank of this communicator (size \(size))")
    }

    @inlinable @inline(__always)
    func checkSameCount(_ send: Int, _ recv: Int, _ operation: StaticString) throws(MPIError) {
        if _fastPath(send == recv) { return }
        throw MPIError.refused(
            "\(operation)", MPI_ERR_COUNT,
            "send buffer has \(send) elements but receive buffer has \(recv)")
    }

    /// Runs a blocking collective: as MPI's blocking call, or, with a watchdog installed, as its
    /// nonblocking form waited for against the watchdog's deadline.
    @inlinable @inline(__always)
    func blocking(
        _ operation: StaticString, _ nonblockingName: StaticString,
        direct: () -> Int32,
        start: (UnsafeMutablePointer<MPI_Request?>) -> Int32
    ) throws(MPIError) {
        guard let watchdog else {
            try mpiCheck(direct(), operation)
            return
        }
        var request = dcnet_mpi_request_null()
        let number = watchdog.begin()
        try mpiCheck(start(&request), nonblockingName)
        try watchdog.wait(&request, number: number, operation: operation)
    }

    // MARK: allReduce

    /// In place: every rank ends with the element-wise reduction of all ranks' buffers.
    @inlinable
    public func allReduce<T: MPIScalar>(
        _ buffer: UnsafeMutableBufferPointer<T>,
        op: ReductionOp = .sum
    ) throws(MPIError) {
        let n = try mpiCount(buffer.count, "MPI_Allreduce")
        try blocking(
            "MPI_Allreduce", "MPI_Iallreduce",
            direct: {
                MPI_Allreduce(dcnet_mpi_in_place(), buffer.baseAddress, n, T.mpiDatatype, T.mpiOp(op), handle)
            },
            start: {
                MPI_Iallreduce(dcnet_mpi_in_place(), buffer.baseAddress, n, T.mpiDatatype, T.mpiOp(op), handle, $0)
            })
    }

    /// In place on an array's storage (no copy).
    @inlinable
    public func allReduce<T: MPIScalar>(_ array: inout [T], op: ReductionOp = .sum) throws(MPIError) {
        try array.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in
            try allReduce(buffer, op: op)
        }
    }

    /// Out of place. `send` and `receive` must not overlap and must have equal counts
    /// (checked: MPI would otherwise write past `receive`).
    @inlinable
    public func allReduce<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>,
        into receive: UnsafeMutableBufferPointer<T>,
        op: ReductionOp = .sum
    ) throws(MPIError) {
        try checkSameCount(send.count, receive.count, "MPI_Allreduce")
        let n = try mpiCount(send.count, "MPI_Allreduce")
        try blocking(
            "MPI_Allreduce", "MPI_Iallreduce",
            direct: {
                MPI_Allreduce(send.baseAddress, receive.baseAddress, n, T.mpiDatatype, T.mpiOp(op), handle)
            },
            start: {
                MPI_Iallreduce(send.baseAddress, receive.baseAddress, n, T.mpiDatatype, T.mpiOp(op), handle, $0)
            })
    }

    /// Out of place between arrays; `receive` must already have `send.count` elements.
    @inlinable
    public func allReduce<T: MPIScalar>(
        _ send: [T], into receive: inout [T],
        op: ReductionOp = .sum
    ) throws(MPIError) {
        try send.withUnsafeBufferPointer { (s) throws(MPIError) in
            try receive.withUnsafeMutableBufferPointer { (r) throws(MPIError) in
                try allReduce(s, into: r, op: op)
            }
        }
    }

    /// One value, e.g. a loss or a sample count summed over ranks.
    @inlinable
    public func allReduce<T: MPIScalar>(_ value: T, op: ReductionOp = .sum) throws(MPIError) -> T {
        var v = value
        try withUnsafeMutablePointer(to: &v) { (p) throws(MPIError) in
            try allReduce(UnsafeMutableBufferPointer(start: p, count: 1), op: op)
        }
        return v
    }

    // MARK: broadcast

    /// Copies `root`'s buffer into every other rank's buffer (same count on all ranks).
    @inlinable
    public func broadcast<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws(MPIError) {
        let r = try checkRoot(root, "MPI_Bcast")
        let n = try mpiCount(buffer.count, "MPI_Bcast")
        try blocking(
            "MPI_Bcast", "MPI_Ibcast",
            direct: {
                MPI_Bcast(buffer.baseAddress, n, T.mpiDatatype, r, handle)
            },
            start: {
                MPI_Ibcast(buffer.baseAddress, n, T.mpiDatatype, r, handle, $0)
            })
    }

    /// Broadcast into an array's storage; every rank's array must already have the length.
    @inlinable
    public func broadcast<T: MPIScalar>(_ array: inout [T], root: Int) throws(MPIError) {
        try array.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in
            try broadcast(buffer, root: root)
        }
    }

    /// One value from `root` (e.g. a seed chosen on rank 0).
    @inlinable
    public func broadcast<T: MPIScalar>(_ value: T, root: Int) throws(MPIError) -> T {
        var v = value
        try withUnsafeMutablePointer(to: &v) { (p) throws(MPIError) in
            try broadcast(UnsafeMutableBufferPointer(start: p, count: 1), root: root)
        }
        return v
    }

    // MARK: allGather

    /// Concatenates every rank's `send`, in rank order, into each rank's `receive`
    /// (`receive.count == send.count * size`, checked; `send.count` equal on all ranks).
    @inlinable
    public func allGather<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>,
        into receive: UnsafeMutableBufferPointer<T>
    ) throws(MPIError) {
        let (total, overflow) = send.count.multipliedReportingOverflow(by: size)
        guard !overflow, total == receive.count else {
            throw MPIError.refused(
                "MPI_Allgather", MPI_ERR_COUNT,
                "receive buffer has \(receive.count) elements, expected \(send.count) × \(size) ranks")
        }
        let n = try mpiCount(send.count, "MPI_Allgather")
        _ = try mpiCount(total, "MPI_Allgather")
        try blocking(
            "MPI_Allgather", "MPI_Iallgather",
            direct: {
                MPI_Allgather(send.baseAddress, n, T.mpiDatatype, receive.baseAddress, n, T.mpiDatatype, handle)
            },
            start: {
                MPI_Iallgather(send.baseAddress, n, T.mpiDatatype, receive.baseAddress, n, T.mpiDatatype, handle, $0)
            })
    }

    /// Array form of `allGather(_:into:)`; `receive` must already have the full length.
    @inlinable
    public func allGather<T: MPIScalar>(_ send: [T], into receive: inout [T]) throws(MPIError) {
        try send.withUnsafeBufferPointer { (s) throws(MPIError) in
            try receive.withUnsafeMutableBufferPointer { (r) throws(MPIError) in
                try allGather(s, into: r)
            }
        }
    }

    /// Convenience that allocates the result: `[rank 0's send..., rank 1's send..., ...]`.
    @inlinable
    public func allGather<T: MPIScalar>(_ send: [T]) throws(MPIError) -> [T] {
        let (total, overflow) = send.count.multipliedReportingOverflow(by: size)
        guard !overflow else {
            throw MPIError.refused("MPI_Allgather", MPI_ERR_COUNT, "\(send.count) × \(size) overflows")
        }
        var result = [T](unsafeUninitializedCapacity: total) { _, initialized in initialized = total }
        try allGather(send, into: &result)
        return result
    }

    // MARK: reduce

    /// Reduces every rank's `send` into `receive` on `root`.
    ///
    /// `receive` must have `send.count` elements on *every* rank even though only the
    /// root's is written: a check that depended on being root would throw on the root
    /// alone and leave the other ranks blocked in `MPI_Reduce`. Ranks that do not want
    /// a receive buffer use the in-place `reduce(_:op:root:)`.
    @inlinable
    public func reduce<T: MPIScalar>(
        _ send: UnsafeBufferPointer<T>,
        into receive: UnsafeMutableBufferPointer<T>,
        op: ReductionOp = .sum, root: Int
    ) throws(MPIError) {
        let r = try checkRoot(root, "MPI_Reduce")
        try checkSameCount(send.count, receive.count, "MPI_Reduce")
        let n = try mpiCount(send.count, "MPI_Reduce")
        try blocking(
            "MPI_Reduce", "MPI_Ireduce",
            direct: {
                MPI_Reduce(send.baseAddress, receive.baseAddress, n, T.mpiDatatype, T.mpiOp(op), r, handle)
            },
            start: {
                MPI_Ireduce(send.baseAddress, receive.baseAddress, n, T.mpiDatatype, T.mpiOp(op), r, handle, $0)
            })
    }

    /// Array form of `reduce(_:into:op:root:)`.
    @inlinable
    public func reduce<T: MPIScalar>(
        _ send: [T], into receive: inout [T],
        op: ReductionOp = .sum, root: Int
    ) throws(MPIError) {
        try send.withUnsafeBufferPointer { (s) throws(MPIError) in
            try receive.withUnsafeMutableBufferPointer { (rcv) throws(MPIError) in
                try reduce(s, into: rcv, op: op, root: root)
            }
        }
    }

    /// In place: on `root` the buffer is replaced by the reduction; on other ranks it
    /// is only read. No second buffer needed anywhere.
    @inlinable
    public func reduce<T: MPIScalar>(
        _ buffer: UnsafeMutableBufferPointer<T>,
        op: ReductionOp = .sum, root: Int
    ) throws(MPIError) {
        let r = try checkRoot(root, "MPI_Reduce")
        let n = try mpiCount(buffer.count, "MPI_Reduce")
        // The root reduces in place; the others only send.
        let send = rank == root ? dcnet_mpi_in_place() : UnsafeMutableRawPointer(buffer.baseAddress)
        let receive = rank == root ? UnsafeMutableRawPointer(buffer.baseAddress) : nil
        try blocking(
            "MPI_Reduce", "MPI_Ireduce",
            direct: {
                MPI_Reduce(send, receive, n, T.mpiDatatype, T.mpiOp(op), r, handle)
            },
            start: {
                MPI_Ireduce(send, receive, n, T.mpiDatatype, T.mpiOp(op), r, handle, $0)
            })
    }

    /// In-place array form of `reduce(_:op:root:)`.
    @inlinable
    public func reduce<T: MPIScalar>(_ array: inout [T], op: ReductionOp = .sum, root: Int) throws(MPIError) {
        try array.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in
            try reduce(buffer, op: op, root: root)
        }
    }

    // MARK: nonblocking

    /// Starts an in-place all-reduce and returns at once, so communication can overlap
    /// with computation (e.g. reduce one part of a buffer while the next part is being
    /// computed).
    ///
    /// - Important: The caller must neither read nor write `buffer` until the request
    ///   completes (`wait()` returns or `test()` returns true), and it must stay allocated
    ///   that long. Pass the object that owns its memory as `owner`: the request keeps it
    ///   alive, also when an error drops the request in flight (MPI may write the buffer
    ///   until the process ends). Without an owner the request holds only the address:
    ///   a temporary pointer (such as one from `withUnsafeMutableBufferPointer` that ends
    ///   before completion) is undefined behaviour.
    ///
    /// OpenMPI advances nonblocking collectives mostly inside MPI calls, so call
    /// `Request.test()` periodically while computing (e.g. between layers).
    ///
    /// There is deliberately no `inout [T]` overload: an array's storage address is only
    /// guaranteed inside `withUnsafeMutableBufferPointer`, shorter than the request.
    @inlinable
    public func iAllReduce<T: MPIScalar>(
        _ buffer: UnsafeMutableBufferPointer<T>,
        op: ReductionOp = .sum,
        owner: AnyObject? = nil
    ) throws(MPIError) -> Request {
        let n = try mpiCount(buffer.count, "MPI_Iallreduce")
        var request = dcnet_mpi_request_null()
        let number = watchdog?.begin() ?? 0
        try mpiCheck(
            MPI_Iallreduce(
                dcnet_mpi_in_place(), buffer.baseAddress, n, T.mpiDatatype,
                T.mpiOp(op), handle, &request), "MPI_Iallreduce")
        return Request(
            handle: request, operation: "MPI_Iallreduce", communicator: self, bufferOwner: owner, watchdog: watchdog,
            number: number)
    }
}
