import CMPI

/// A group of ranks that take part in collectives together.
///
/// Rank, size and the node-local layout never change for a communicator, so they are
/// read once at creation and are plain stored properties afterwards (cheap enough to
/// query inside hot loops).
///
/// Threading: MPI is initialized with `MPI_THREAD_FUNNELED`, so call the methods only
/// from the main thread. `@unchecked Sendable` lets the handle be *stored* in
/// concurrency-checked types; it does not make concurrent calls legal.
///
/// Matching: collectives are matched by call order. Every rank must issue the same
/// collectives on a communicator in the same order with the same counts, or the job
/// hangs (or MPI reports a truncation). Argument checks that throw are done in Swift
/// before MPI is called and depend only on arguments all ranks pass alike.
public final class Communicator: @unchecked Sendable {
    /// The raw handle, for calling MPI directly where this wrapper has no method.
    public let handle: MPI_Comm
    /// This process's rank in `0..<size`.
    public let rank: Int
    /// Number of ranks.
    public let size: Int
    /// Rank among the ranks sharing this node (`MPI_COMM_TYPE_SHARED`); use it to
    /// split cores between co-located ranks (e.g. OpenBLAS threads per rank).
    public let localRank: Int
    /// Number of ranks of this communicator on this node.
    public let localSize: Int
    private let owned: Bool
    /// Deadlines for this communicator's blocking waits (see `installWatchdog`); nil: MPI's own
    /// blocking calls, which wait forever.
    public private(set) var watchdog: CollectiveWatchdog?

    /// All processes of the job. Initializes MPI on first use.
    public static var world: Communicator { MPIRuntime.state.world }

    /// True on rank 0, the rank that conventionally logs and writes files.
    @inlinable public var isRoot: Bool { rank == 0 }

    /// Collective: adopts `handle`, switches it to `MPI_ERRORS_RETURN`, and learns the
    /// node layout with `MPI_Comm_split_type` (which every rank must call together).
    init(handle: MPI_Comm, owned: Bool) throws(MPIError) {
        self.handle = handle
        self.owned = owned
        try mpiCheck(MPI_Comm_set_errhandler(handle, dcnet_mpi_errors_return()), "MPI_Comm_set_errhandler")
        var r: Int32 = 0, s: Int32 = 0
        try mpiCheck(MPI_Comm_rank(handle, &r), "MPI_Comm_rank")
        try mpiCheck(MPI_Comm_size(handle, &s), "MPI_Comm_size")
        var shared = dcnet_mpi_comm_null()
        try mpiCheck(
            MPI_Comm_split_type(
                handle, dcnet_mpi_comm_type_shared(), r,
                dcnet_mpi_info_null(), &shared), "MPI_Comm_split_type")
        var lr: Int32 = 0, ls: Int32 = 1
        let rcRank = MPI_Comm_rank(shared, &lr)
        let rcSize = MPI_Comm_size(shared, &ls)
        MPI_Comm_free(&shared)
        try mpiCheck(rcRank, "MPI_Comm_rank")
        try mpiCheck(rcSize, "MPI_Comm_size")
        rank = Int(r); size = Int(s); localRank = Int(lr); localSize = Int(ls)
    }

    deinit {
        if owned && MPIRuntime.mayFreeHandles {
            var h: MPI_Comm? = handle
            MPI_Comm_free(&h)
        }
    }

    /// Collective: a new communicator with the same ranks but its own matching space,
    /// so a library's collectives can never interleave with the caller's.
    public func duplicate() throws(MPIError) -> Communicator {
        var newHandle = dcnet_mpi_comm_null()
        try mpiCheck(MPI_Comm_dup(handle, &newHandle), "MPI_Comm_dup")
        return try Self.adopt(newHandle!)
    }

    /// A new handle as an owned communicator, freed again when setting it up fails.
    private static func adopt(_ handle: MPI_Comm) throws(MPIError) -> Communicator {
        do {
            return try Communicator(handle: handle, owned: true)
        } catch {
            var h: MPI_Comm? = handle
            MPI_Comm_free(&h)
            throw error
        }
    }

    /// Collective: partitions the ranks by `color` (ordered by `key`, then old rank).
    /// A rank passing `nil` joins no group and gets `nil` back.
    public func split(color: Int?, key: Int = 0) throws(MPIError) -> Communicator? {
        var newHandle = dcnet_mpi_comm_null()
        let c = color.map { Int32(truncatingIfNeeded: $0) } ?? dcnet_mpi_undefined()
        try mpiCheck(MPI_Comm_split(handle, c, Int32(truncatingIfNeeded: key), &newHandle), "MPI_Comm_split")
        guard let h = newHandle, h != dcnet_mpi_comm_null() else { return nil }
        return try Self.adopt(h)
    }

    /// Collective: from now on every blocking collective on this communicator (and every wait on
    /// a request it starts) waits with `configuration.timeout` as its deadline and, when that
    /// passes, names the ranks that did not arrive and ends the job (`CollectiveWatchdog`).
    public func installWatchdog(_ configuration: CollectiveWatchdog.Configuration) throws(MPIError) {
        watchdog = try CollectiveWatchdog(communicator: self, configuration: configuration)
    }

    /// Collective: the host name of every rank (`MPI_Get_processor_name`), in rank order.
    public func processorNames() throws(MPIError) -> [String] {
        let width = Int(dcnet_mpi_max_processor_name())
        var mine = [UInt8](repeating: 0, count: width)
        var length: Int32 = 0
        let rc = mine.withUnsafeMutableBufferPointer {
            $0.withMemoryRebound(to: CChar.self) { MPI_Get_processor_name($0.baseAddress, &length) }
        }
        try mpiCheck(rc, "MPI_Get_processor_name")
        let all = try allGather(mine)
        return (0..<size).map { r in
            let bytes = all[(r * width)..<((r + 1) * width)].prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Blocks until every rank has called it. Use it to line ranks up before timing,
    /// not for correctness: collectives already order the data they move.
    public func barrier() throws(MPIError) {
        if let watchdog {
            var request = dcnet_mpi_request_null()
            let number = watchdog.begin()
            try mpiCheck(MPI_Ibarrier(handle, &request), "MPI_Ibarrier")
            try watchdog.wait(&request, number: number, operation: "MPI_Barrier")
        } else {
            try mpiCheck(MPI_Barrier(handle), "MPI_Barrier")
        }
    }

    /// Terminates every process of the job. The way out when one rank hits an error
    /// the others cannot know about: exiting alone would leave them blocked forever.
    public func abort(code: Int32 = 1) -> Never {
        // Not exit(): its atexit handler would call MPI_Finalize, which can wait for peers;
        // abortJob also ends the process itself if MPI_Abort blocks (launcher unreachable).
        CollectiveWatchdog.abortJob(code: code, exitAfter: 10)
    }
}
