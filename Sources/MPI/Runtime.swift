import CMPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Process-wide MPI start and stop.
///
/// MPI may be initialized only once per process and must be finalized after every
/// other MPI call, so this type owns both ends: `initialize()` is idempotent and is
/// also triggered by the first use of `Communicator.world`, and finalization is
/// registered with `atexit` so it runs once, after the program's last MPI call,
/// without every entry point having to remember it.
///
/// A program started without `mpirun` becomes a one-rank job (OpenMPI's singleton
/// mode), so the same binary and tests run unchanged on a laptop.
public enum MPIRuntime {
    /// The thread level granted by MPI. Only `MPI_THREAD_FUNNELED` is requested: all
    /// MPI calls must come from the thread that initialized MPI (the main thread),
    /// which lets OpenMPI skip internal locking on the hot paths.
    public static var threadLevel: Int32 { state.threadLevel }

    /// Initializes MPI if nobody has yet. Safe to call any number of times; later calls
    /// are free. Make the first call (or first use of `Communicator.world`) on the main
    /// thread: under `MPI_THREAD_FUNNELED` the initializing thread is the only one that
    /// may call MPI afterwards.
    ///
    /// Collective over `MPI_COMM_WORLD` (it computes the node-local rank), so every
    /// process of the job must reach it, directly or through `Communicator.world`.
    public static func initialize() { _ = state }

    /// True between a successful initialization and finalization.
    public static var isActive: Bool {
        var initialized: Int32 = 0, finalized: Int32 = 0
        MPI_Initialized(&initialized)
        MPI_Finalized(&finalized)
        return initialized != 0 && finalized == 0
    }

    /// Finalizes now instead of at exit (e.g. before a long non-MPI epilogue).
    /// No MPI call, including via `Communicator`, is allowed afterwards.
    public static func finalize() throws(MPIError) {
        guard isActive else { return }
        if hasAbandonedRequests {
            // MPI_Finalize would wait for the operations the peers may never join.
            throw MPIError.refused(
                "MPI_Finalize", MPI_ERR_PENDING, "nonblocking operations dropped in flight: \(abandonedDescription)")
        }
        try mpiCheck(MPI_Finalize(), "MPI_Finalize")
    }

    /// A request dropped before it completed, with what it reads and writes kept alive.
    struct AbandonedRequest {
        var handle: MPI_Request?
        let operation: StaticString
        let communicator: Communicator
        let bufferOwner: AnyObject?
    }

    /// Nonblocking operations dropped before they completed (`Request.deinit` on an error path).
    /// Only touched from the thread that initialised MPI (MPI_THREAD_FUNNELED).
    nonisolated(unsafe) static var abandoned: [AbandonedRequest] = []

    /// Keeps an incomplete request that its owner dropped, with its communicator and its buffer's
    /// owner: MPI may still write the buffer and the peers may wait on it, so the process must not
    /// finalise (`MPI_Finalize` would wait for the operation) but end the job with `MPI_Abort`.
    static func abandon(_ request: AbandonedRequest) {
        abandoned.append(request)
    }

    /// Whether handles may still be freed: not after `MPI_Finalize`, and not once a request was
    /// abandoned (freeing is collective, and the peers may never get there; the process is on its
    /// way to `MPI_Abort` and the OS reclaims everything).
    static var mayFreeHandles: Bool { isActive && abandoned.isEmpty }

    /// Whether any dropped request is still in flight. Testing them lets those whose peers did
    /// arrive complete, so a rank that recovered (tests) can still finalise normally.
    public static var hasAbandonedRequests: Bool {
        guard !abandoned.isEmpty else { return false }
        guard isActive else { return true }
        abandoned.removeAll { entry in
            var handle = entry.handle, flag: Int32 = 0
            return MPI_Test(&handle, &flag, dcnet_mpi_status_ignore()) != MPI_SUCCESS || flag != 0
        }
        return !abandoned.isEmpty
    }

    /// Names of the operations dropped in flight, for messages ("MPI_Iallreduce ×3").
    public static var abandonedDescription: String {
        var counts: [String: Int] = [:]
        for entry in abandoned { counts["\(entry.operation)", default: 0] += 1 }
        return counts.keys.sorted().map { "\($0) ×\(counts[$0]!)" }.joined(separator: ", ")
    }

    /// Wall-clock seconds from an arbitrary origin, with MPI's resolution.
    @inlinable public static func wallTime() -> Double { MPI_Wtime() }

    struct State: @unchecked Sendable {
        let threadLevel: Int32
        let world: Communicator
    }

    /// Swift's lazy `static let` gives a once-only, thread-safe initialization.
    static let state: State = {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        var provided: Int32 = Int32(MPI_THREAD_SINGLE)
        if initialized == 0 {
            let rc = MPI_Init_thread(nil, nil, dcnet_mpi_thread_funneled(), &provided)
            if rc != MPI_SUCCESS {
                fatalError("MPI_Init_thread failed with code \(rc)")
            }
            // Whoever initializes finalizes: register only when we did.
            atexit {
                var finalized: Int32 = 0
                MPI_Finalized(&finalized)
                // With requests dropped in flight MPI_Finalize can block for good; leaving
                // without it makes mpirun end the job.
                if finalized == 0 && MPIRuntime.mayFreeHandles { MPI_Finalize() }
            }
        } else {
            MPI_Query_thread(&provided)
        }
        let worldHandle: MPI_Comm = dcnet_mpi_comm_world()
        MPI_Comm_set_errhandler(worldHandle, dcnet_mpi_errors_return())
        do {
            let world = try Communicator(handle: worldHandle, owned: false)
            return State(threadLevel: provided, world: world)
        } catch {
            fatalError("cannot set up MPI_COMM_WORLD: \(error)")
        }
    }()
}
