import CMPI

/// An outstanding nonblocking operation.
///
/// The buffer it was started on belongs to MPI until the request completes; see
/// `Communicator.iAllReduce(_:op:owner:)`. A class (not a struct) so that copies cannot
/// complete the same MPI request twice and so requests can sit in arrays.
///
/// The rule for errors: a request keeps alive what MPI may still read and write through it (the
/// object that owns its buffer, and its communicator), also when it is dropped incomplete; it
/// then goes to `MPIRuntime`'s abandoned requests, and the process ends with `MPI_Abort` instead
/// of finalising (`dcnet-dist`'s `runJob` is the one place that decides it).
public final class Request: @unchecked Sendable {
    @usableFromInline var handle: MPI_Request?
    @usableFromInline let operation: StaticString
    @usableFromInline var completed: Bool
    /// Waits go through the communicator's watchdog (deadline, diagnosis) when it has one.
    @usableFromInline let watchdog: CollectiveWatchdog?
    /// The watchdog's number of the collective this request belongs to.
    @usableFromInline let number: Int
    /// Kept alive as long as the request: any MPI_Test (this request's last one in deinit, or a
    /// later call while it sits abandoned in flight) progresses the collective on its
    /// communicator. Were the communicator freed first, OpenMPI would progress the request on
    /// freed memory and the rank would crash (SIGSEGV in libnbc) instead of naming its error.
    @usableFromInline let communicator: Communicator
    /// Owns the memory the operation reads and writes (nil: the caller guarantees it outlives the
    /// request): kept alive with the request, and past it while it is abandoned in flight.
    @usableFromInline let bufferOwner: AnyObject?
    /// True once `wait()` returned or `test()` returned true.
    @inlinable public var isComplete: Bool { completed }

    @usableFromInline
    init(
        handle: MPI_Request?, operation: StaticString, communicator: Communicator, bufferOwner: AnyObject? = nil,
        watchdog: CollectiveWatchdog? = nil, number: Int = 0
    ) {
        self.handle = handle
        self.bufferOwner = bufferOwner
        self.operation = operation
        self.completed = false
        self.communicator = communicator
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
        guard !completed, MPIRuntime.isActive else { return }
        // Normal code always waits; a request dropped incomplete means an error is unwinding
        // the caller. Waiting here could block for good (the peers may never start this
        // collective, or a failed wait left the others unfinished), and the caller's abort
        // would never be reached. Freeing an active collective request is erroneous, so the
        // request is handed to `MPIRuntime` with what it uses (see `MPIRuntime.abandon`).
        var flag: Int32 = 0
        if MPI_Test(&handle, &flag, dcnet_mpi_status_ignore()) == MPI_SUCCESS, flag != 0 { return }
        MPIRuntime.abandon(
            .init(handle: handle, operation: operation, communicator: communicator, bufferOwner: bufferOwner))
    }
}
