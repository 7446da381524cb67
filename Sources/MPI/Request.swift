import CMPI

/// An outstanding nonblocking operation.
///
/// The buffer it was started on belongs to MPI until the request completes; see
/// `Communicator.iAllReduce(_:op:)`. A class (not a struct) so that copies cannot
/// complete the same MPI request twice and so requests can sit in arrays.
public final class Request: @unchecked Sendable {
    @usableFromInline var handle: MPI_Request?
    @usableFromInline let operation: StaticString
    @usableFromInline var completed: Bool
    /// Waits go through the communicator's watchdog (deadline, diagnosis) when it has one.
    @usableFromInline let watchdog: CollectiveWatchdog?
    /// The watchdog's number of the collective this request belongs to.
    @usableFromInline let number: Int
    /// True once `wait()` returned or `test()` returned true.
    @inlinable public var isComplete: Bool { completed }

    @usableFromInline
    init(handle: MPI_Request?, operation: StaticString, watchdog: CollectiveWatchdog? = nil, number: Int = 0) {
        self.handle = handle
        self.operation = operation
        self.completed = false
        self.watchdog = watchdog
        self.number = number
    }

    /// Drives progress and reports completion without blocking.
    ///
    /// OpenMPI makes progress on nonblocking collectives mainly while inside MPI calls,
    /// so calling this between units of local work is what moves the data. It is one
    /// `MPI_Test` call, or no call at all once complete.
    @inlinable
    public func test() throws(MPIError) -> Bool {
        if completed { return true }
        var flag: Int32 = 0
        try mpiCheck(MPI_Test(&handle, &flag, dcnet_mpi_status_ignore()), "MPI_Test")
        if flag != 0 { completed = true }
        return completed
    }

    /// Blocks until the operation completes; after it returns the buffer is the
    /// caller's again. Calling it again is a no-op.
    @inlinable
    public func wait() throws(MPIError) {
        if completed { return }
        if let watchdog {
            try watchdog.wait(&handle, number: number, operation: operation)
        } else {
            try mpiCheck(MPI_Wait(&handle, dcnet_mpi_status_ignore()), "MPI_Wait")
        }
        completed = true
    }

    /// Waits for all of `requests`, reporting the first failure after attempting all.
    public static func waitAll(_ requests: [Request]) throws(MPIError) {
        var firstError: MPIError?
        for request in requests {
            do { try request.wait() } catch { if firstError == nil { firstError = error } }
        }
        if let firstError { throw firstError }
    }

    deinit {
        // MPI may still write into the buffer of an incomplete request, and freeing an
        // active collective request is not allowed, so dropping one waits for it (with the
        // watchdog's deadline, so a lost peer cannot turn this into a hang).
        if !completed && MPIRuntime.isActive {
            if let watchdog {
                try? watchdog.wait(&handle, number: number, operation: operation)
            } else {
                MPI_Wait(&handle, dcnet_mpi_status_ignore())
            }
        }
    }
}
