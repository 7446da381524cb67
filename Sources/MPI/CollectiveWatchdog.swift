import CMPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Deadlines for every blocking wait on a communicator, and a diagnosis naming the ranks that
/// did not arrive when one expires.
///
/// Why it exists: a rank blocked in an MPI collective never times out by itself. OpenMPI's TCP
/// data path sets no keepalive, so a stopped peer (SIGSTOP, a hung filesystem read) or an
/// unreachable host leaves every other rank waiting forever. With a watchdog installed
/// (`Communicator.installWatchdog`), the communicator's blocking collectives run as their
/// nonblocking forms and are waited for here, by polling against a deadline.
///
/// How the missing ranks are found, without any traffic on the healthy path: every rank numbers
/// the collectives it starts on the communicator (`sequence`); the numbers agree across ranks
/// because every rank starts the same collectives in the same order. A rank that has waited
/// `reportAfter` seconds in one wait sends a 24-byte report ("I have started collective k, I am
/// waiting on j, at progress p") to every other rank on a private duplicate communicator, and reads
/// the reports of others while it keeps waiting. When the deadline expires, a rank waiting on
/// collective j knows exactly who has reached it: the ranks whose report says they started j.
/// Everybody else has not arrived: stopped, cut off, or still computing.
///
/// Who speaks: the lowest-numbered rank among those that arrived (normally rank 0) expires
/// first; the others wait `grace` seconds longer, so one complete message is printed before
/// `MPI_Abort` ends the job. On each side of a network partition the lowest rank that can still
/// hear the others speaks for its side.
public final class CollectiveWatchdog {
    public struct Configuration: Sendable {
        /// Seconds one wait may take before the job is ended; nil: wait forever (but still warn).
        public var timeout: Double?
        /// Seconds into a wait after which a rank reports its arrival to the others.
        public var reportAfter: Double
        /// How much longer than the lowest arrived rank the others wait before expiring.
        public var grace: Double
        /// Without a timeout: seconds between stall warnings (naming the missing ranks).
        public var warnEvery: Double
        /// Exit status of the job when a wait expires.
        public var exitCode: Int32
        /// Seconds after `MPI_Abort` at which the process exits by itself if MPI has not ended it
        /// (MPI_Abort may block while the launcher is unreachable).
        public var abortExitAfter: Double
        /// Prefix of every line this type prints (e.g. the program name).
        public var program: String
        /// What the caller's progress counter (`CollectiveWatchdog.progress`) counts, for messages
        /// ("step": "waited 30 s at step 12").
        public var progressName: String
        /// The last line of a timeout message: what the user can do next (nil: none).
        public var adviceAfterTimeout: String?

        public init(
            timeout: Double?, program: String = "mpi", progressName: String = "progress",
            adviceAfterTimeout: String? = nil
        ) {
            self.progressName = progressName
            self.adviceAfterTimeout = adviceAfterTimeout
            self.timeout = timeout
            let t = timeout ?? 240
            reportAfter = min(max(t / 4, 0.5), 10)
            grace = min(max(t / 4, 2), 10)
            warnEvery = 60
            exitCode = 3
            abortExitAfter = 10
            self.program = program
        }
    }

    public let configuration: Configuration
    /// The host name of every rank (`MPI_Get_processor_name`), for messages.
    public let hosts: [String]
    public let rank: Int
    public let size: Int
    /// Private duplicate of the watched communicator: reports never match the caller's messages.
    private let reportChannel: MPI_Comm
    /// Collectives started on the watched communicator so far (the same count on every rank).
    public private(set) var sequence = 0
    /// Where the caller is, for messages: a counter it advances (0: not started), named by
    /// `Configuration.progressName`, and what it is doing.
    public var progress = 0
    public var phase = "start-up"
    /// Bucket (or other part) being waited on, 0-based, and the number of parts, if any.
    public var part: (index: Int, count: Int)?
    /// Names what the caller is about to wait for (no allocation for a string literal).
    @inlinable
    public func enter(_ phase: String, part: (index: Int, count: Int)? = nil) {
        self.phase = phase
        self.part = part
    }

    /// Seconds spent blocked in waits (time the local rank could not compute).
    public private(set) var blockedSeconds = 0.0
    /// Whether the process has been asked to stop (its SIGTERM/SIGUSR1/SIGINT flag). A rank that has been
    /// blocked for a while when the launcher signals it is usually being killed because the
    /// launcher lost a node (OpenMPI's keepalive ends such a job with SIGTERM, then SIGKILL 1 s
    /// later), before any collective timeout: it then names the missing ranks at once.
    public var stopRequested: (() -> Bool)?
    /// The diagnosis of the last stall warning (without a timeout), for tests and callers.
    public private(set) var lastWarning: StallDiagnosis?
    /// Newest report from each rank: the collective it had started and the progress it was at.
    private var heard: [StallReport?]
    /// Sends of this rank's reports still in flight (buffer kept alive until they complete).
    private var outgoing: [(request: MPI_Request?, buffer: UnsafeMutablePointer<Int64>)] = []
    static let reportTag: Int32 = 7301

    /// Collective over `communicator`: gathers host names and duplicates the communicator.
    init(communicator: Communicator, configuration: Configuration) throws(MPIError) {
        self.configuration = configuration
        rank = communicator.rank
        size = communicator.size
        hosts = try communicator.processorNames()
        var dup = dcnet_mpi_comm_null()
        try mpiCheck(MPI_Comm_dup(communicator.handle, &dup), "MPI_Comm_dup")
        try mpiCheck(MPI_Comm_set_errhandler(dup, dcnet_mpi_errors_return()), "MPI_Comm_set_errhandler")
        reportChannel = dup!
        heard = Array(repeating: nil, count: communicator.size)
    }

    deinit {
        guard MPIRuntime.mayFreeHandles else { return }
        drainReports()
        for var o in outgoing {
            // Sends to a peer that never listened again: let MPI finish or drop them; the buffer
            // may still be read, so it is deliberately not freed.
            MPI_Request_free(&o.request)
        }
        var h: MPI_Comm? = reportChannel
        MPI_Comm_free(&h)
    }

    /// "rank 3 (node2)".
    public func name(_ r: Int) -> String { "rank \(r) (\(hosts.indices.contains(r) ? hosts[r] : "?"))" }

    /// A gap between two polls of one wait longer than this (the longest sleep between polls is
    /// 1 ms) means this process was not running: stopped, or the machine was suspended.
    static let selfStopGap = 2.0

    /// Numbers the next collective; call when starting one on the watched communicator.
    @usableFromInline
    func begin() -> Int {
        sequence += 1
        return sequence
    }

    /// Waits for `request` (collective number `number`, the MPI call `operation`), polling MPI so
    /// the operation progresses, exchanging arrival reports once the wait gets long, and ending
    /// the job when the deadline passes.
    @usableFromInline
    func wait(_ request: inout MPI_Request?, number: Int, operation: StaticString) throws(MPIError) {
        var flag: Int32 = 0
        try mpiCheck(MPI_Test(&request, &flag, dcnet_mpi_status_ignore()), "MPI_Test")
        if flag != 0 { return }
        let start = MPI_Wtime()
        var reported = false
        var nextWarning = configuration.warnEvery
        var interruptedAt: Double?, announced = false
        var pause: Int = 0  // nanoseconds between polls
        // Time this rank itself did not run (SIGSTOP of the whole job by an operator, a suspended
        // machine) is not evidence against the others: a gap between two polls far longer than
        // the longest sleep is left out of the wait, so a paused and continued job carries on.
        // A rank stopped alone still ends the job: the others keep polling without gaps.
        var lastPoll = start, notRunning = 0.0
        defer { blockedSeconds += MPI_Wtime() - start - notRunning }
        while true {
            try mpiCheck(MPI_Test(&request, &flag, dcnet_mpi_status_ignore()), "MPI_Test")
            if flag != 0 { return }
            let now = MPI_Wtime()
            if now - lastPoll > Self.selfStopGap { notRunning += now - lastPoll }
            lastPoll = now
            let waited = now - start - notRunning
            // Spin like MPI_Wait through ordinary waits (the end of backward, a slower rank
            // arriving): over TCP every round of the reduction needs this rank inside MPI, and a
            // sleeping rank would add its sleep to each round (measured: 3% of a step at 1 Gbit/s
            // with sleeps from 2 ms on). Only a wait of a second or more, a stall, backs off so
            // it stops taking a core from the ranks sharing this node.
            if waited > 1 {
                pause = min(max(pause * 2, 20_000), 1_000_000)
                var ts = timespec(tv_sec: 0, tv_nsec: pause)
                nanosleep(&ts, nil)
            } else if waited > 0.1 {
                sched_yield()
            }
            if interruptedAt == nil, waited >= 1, stopRequested?() == true {
                interruptedAt = waited
            }
            guard waited >= configuration.reportAfter || interruptedAt != nil else { continue }
            if !reported {
                sendReports(waitingOn: number)
                reported = true
            }
            drainReports()
            let diagnosis = diagnose(waitingOn: number)
            // Signalled while stalled: peers report within a few hundred milliseconds (they are
            // signalled too), and the launcher's SIGKILL follows a second after its SIGTERM.
            if let at = interruptedAt, !announced, waited >= at + 0.3, diagnosis.speaker == rank {
                announced = true
                emit(
                    ["stop signal while stalled: \(describeWait(operation, number: number, waited: waited))"]
                        + describeRanks(diagnosis)
                        + [
                            "if the launcher is ending the job (for example \"ORTE has lost communication with a "
                                + "remote daemon\"), the ranks above are the ones it lost"
                        ])
            }
            if let timeout = configuration.timeout {
                let deadline = diagnosis.speaker == rank ? timeout : timeout + configuration.grace
                if waited >= deadline {
                    expire(diagnosis, operation: operation, number: number, waited: waited)
                }
            } else if waited >= nextWarning, diagnosis.speaker == rank {
                warn(diagnosis, operation: operation, number: number, waited: waited)
                nextWarning += configuration.warnEvery
            }
        }
    }

    // MARK: - reports

    private func sendReports(waitingOn number: Int) {
        outgoing.removeAll { entry in
            var r = entry.request, flag: Int32 = 0
            MPI_Test(&r, &flag, dcnet_mpi_status_ignore())
            if flag != 0 { entry.buffer.deallocate() }
            return flag != 0
        }
        for peer in 0..<size where peer != rank {
            let buffer = UnsafeMutablePointer<Int64>.allocate(capacity: 3)
            buffer[0] = Int64(sequence); buffer[1] = Int64(number); buffer[2] = Int64(progress)
            var request = dcnet_mpi_request_null()
            if MPI_Isend(buffer, 3, dcnet_mpi_int64(), Int32(peer), Self.reportTag, reportChannel, &request)
                == MPI_SUCCESS
            {
                outgoing.append((request, buffer))
            } else {
                buffer.deallocate()
            }
        }
    }

    private func drainReports() {
        var buffer: [Int64] = [0, 0, 0]
        while true {
            var flag: Int32 = 0
            var status = MPI_Status()
            guard MPI_Iprobe(dcnet_mpi_any_source(), Self.reportTag, reportChannel, &flag, &status) == MPI_SUCCESS,
                flag != 0
            else { return }
            let source = Int(status.MPI_SOURCE)
            let rc = buffer.withUnsafeMutableBufferPointer {
                MPI_Recv(
                    $0.baseAddress, 3, dcnet_mpi_int64(), status.MPI_SOURCE, Self.reportTag,
                    reportChannel, dcnet_mpi_status_ignore())
            }
            guard rc == MPI_SUCCESS, heard.indices.contains(source) else { return }
            let report = StallReport(started: Int(buffer[0]), waitingOn: Int(buffer[1]), progress: Int(buffer[2]))
            if heard[source].map({ $0.started <= report.started }) ?? true { heard[source] = report }
        }
    }

    func diagnose(waitingOn number: Int) -> StallDiagnosis {
        StallDiagnosis(rank: rank, waitingOn: number, heard: heard)
    }

    // MARK: - messages

    private func describeWait(_ operation: StaticString, number: Int, waited: Double) -> String {
        var what = phase
        if let part { what += " \(part.index + 1) of \(part.count)" }
        let at = progress > 0 ? " at \(configuration.progressName) \(progress)" : ""
        return "waited \(format(waited)) s\(at) in the \(what) (\(operation), collective #\(number))"
    }

    private func describeRanks(_ d: StallDiagnosis) -> [String] {
        let missing = d.missing.map { r -> String in
            guard let h = heard[r] else { return name(r) }
            return "\(name(r)) [last seen waiting at \(configuration.progressName) \(h.progress)]"
        }
        return [
            "ranks that have not arrived (or cannot be reached): "
                + (missing.isEmpty ? "none" : missing.joined(separator: ", ")),
            "ranks waiting with it: " + d.arrived.map(name).joined(separator: ", "),
        ]
    }

    private func emit(_ lines: [String]) {
        // One write(2) for the whole message: unbuffered, and not interleaved with other ranks' lines.
        let text = lines.map { "\(configuration.program): \(name(rank)): \($0)\n" }.joined()
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    private func warn(_ d: StallDiagnosis, operation: StaticString, number: Int, waited: Double) {
        lastWarning = d
        emit(
            [
                "warning: \(describeWait(operation, number: number, waited: waited)) (no collective timeout set; "
                    + "still waiting)"
            ]
                + describeRanks(d))
    }

    private func expire(_ d: StallDiagnosis, operation: StaticString, number: Int, waited: Double) -> Never {
        let hostsMissing = Set(d.missing.map { hosts.indices.contains($0) ? hosts[$0] : "?" }).sorted()
        let cause =
            d.missing.isEmpty
            ? "no rank reported arriving; the network to every peer may be down"
            : "a stopped or hung rank, or an unreachable host (\(hostsMissing.joined(separator: ", ")))"
        emit(
            [
                "collective timeout: \(describeWait(operation, number: number, waited: waited)) (limit "
                    + "\(format(configuration.timeout ?? 0)) s)"
            ]
                + describeRanks(d)
                + [
                    "likely cause: \(cause); ending the job (exit \(configuration.exitCode))."
                        + (configuration.adviceAfterTimeout.map { " " + $0 } ?? "")
                ])
        Self.abortJob(code: configuration.exitCode, exitAfter: configuration.abortExitAfter)
    }

    /// `MPI_Abort`, with a safety net: if MPI has not ended this process `exitAfter` seconds
    /// later (the launcher may be unreachable), it exits by itself with the same code.
    public static func abortJob(code: Int32, exitAfter: Double) -> Never {
        let seconds = max(1, Int(exitAfter.rounded(.up)))
        var thread = pthread_t()
        let context = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        context[0] = seconds; context[1] = Int(code)
        _ = pthread_create(
            &thread, nil,
            { raw in
                let c = raw!.assumingMemoryBound(to: Int.self)
                sleep(UInt32(c[0]))
                _exit(Int32(c[1]))
            }, context)
        MPI_Abort(dcnet_mpi_comm_world(), code)
        _exit(code)
    }

    private func format(_ s: Double) -> String {
        let tenths = Int((s * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

/// What a waiting rank tells the others: it has started collective `started` (so it has arrived
/// at every collective numbered up to that), is blocked on `waitingOn`, at the caller's `progress`.
public struct StallReport: Sendable, Equatable {
    public var started: Int
    public var waitingOn: Int
    public var progress: Int
    public init(started: Int, waitingOn: Int, progress: Int) {
        self.started = started; self.waitingOn = waitingOn; self.progress = progress
    }
}

/// Which ranks have reached the collective a rank is waiting on, from the reports it has heard.
public struct StallDiagnosis: Sendable, Equatable {
    /// Ranks known to have started the collective (the waiting rank included), ascending.
    public let arrived: [Int]
    /// Ranks not known to have started it, ascending.
    public let missing: [Int]
    /// The rank that reports first: the lowest arrived rank.
    public var speaker: Int { arrived.first ?? 0 }

    public init(rank: Int, waitingOn number: Int, heard: [StallReport?]) {
        var arrived: [Int] = [], missing: [Int] = []
        for r in heard.indices {
            if r == rank || (heard[r].map { $0.started >= number } ?? false) {
                arrived.append(r)
            } else {
                missing.append(r)
            }
        }
        self.arrived = arrived
        self.missing = missing
    }
}
