import XCTest

@testable import MPI

#if canImport(Glibc)
import Glibc
#endif

/// The collective watchdog: collectives through it give MPI's results, every rank numbers them
/// alike, and a late rank is named by the ranks waiting for it. (Its expiry ends the job, so it is
/// tested by Tests/integration/stall.sh and multihost.sh, not here.)
final class WatchdogTests: XCTestCase {
    func testDiagnosisSeparatesArrivedFromMissing() {
        let heard: [StallReport?] = [
            nil, StallReport(started: 5, waitingOn: 5, progress: 9),
            StallReport(started: 4, waitingOn: 4, progress: 9), nil,
        ]
        let d = StallDiagnosis(rank: 0, waitingOn: 5, heard: heard)
        XCTAssertEqual(d.arrived, [0, 1])
        XCTAssertEqual(d.missing, [2, 3])
        XCTAssertEqual(d.speaker, 0)
        // Seen from rank 3 with rank 0 silent (stopped, or across a partition): rank 1 speaks.
        let e = StallDiagnosis(rank: 3, waitingOn: 5, heard: heard)
        XCTAssertEqual(e.arrived, [1, 3])
        XCTAssertEqual(e.missing, [0, 2])
        XCTAssertEqual(e.speaker, 1)
        // A rank that reported a later collective has passed this one.
        let f = StallDiagnosis(
            rank: 0, waitingOn: 5, heard: [nil, StallReport(started: 7, waitingOn: 6, progress: 10)])
        XCTAssertEqual(f.arrived, [0, 1])
        XCTAssertEqual(f.missing, [])
    }

    func testConfigurationDefaultsScaleWithTimeout() {
        let short = CollectiveWatchdog.Configuration(timeout: 20)
        XCTAssertEqual(short.reportAfter, 5, accuracy: 1e-9)
        XCTAssertEqual(short.grace, 5, accuracy: 1e-9)
        let long = CollectiveWatchdog.Configuration(timeout: 300)
        XCTAssertEqual(long.reportAfter, 10, accuracy: 1e-9)
        XCTAssertEqual(long.grace, 10, accuracy: 1e-9)
        XCTAssertLessThan(CollectiveWatchdog.Configuration(timeout: 1).reportAfter, 1)
    }

    func testCollectivesThroughTheWatchdogMatchMPI() throws {
        let comm = try Communicator.world.duplicate()
        try comm.installWatchdog(.init(timeout: 120))
        let rank = comm.rank, size = comm.size
        XCTAssertEqual(comm.watchdog?.hosts.count, size)
        XCTAssertFalse(comm.watchdog?.hosts.contains("") ?? true, "every rank has a host name")

        var sums = (0..<1000).map { Float(pattern($0, rank: rank, size: size)) }
        try comm.allReduce(&sums, op: .sum)
        XCTAssertNil(firstMismatch(sums, size: size, op: .sum))
        var maxima = (0..<37).map { Int64(pattern($0, rank: rank, size: size)) }
        var out = [Int64](repeating: 0, count: 37)
        try comm.allReduce(maxima, into: &out, op: .max)
        XCTAssertNil(firstMismatch(out, size: size, op: .max))

        var values = rank == 0 ? [1.5, 2.5, 3.5] : [0.0, 0.0, 0.0]
        try comm.broadcast(&values, root: 0)
        XCTAssertEqual(values, [1.5, 2.5, 3.5])
        let gathered = try comm.allGather([Int32(rank), Int32(rank * 10)])
        XCTAssertEqual(gathered, (0..<size).flatMap { [Int32($0), Int32($0 * 10)] })
        maxima = (0..<37).map { Int64(pattern($0, rank: rank, size: size)) }
        try comm.reduce(&maxima, op: .min, root: size - 1)
        if rank == size - 1 { XCTAssertNil(firstMismatch(maxima, size: size, op: .min)) }
        try comm.barrier()

        let buffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: 513)
        defer { buffer.deallocate() }
        for i in 0..<513 { buffer[i] = Double(pattern(i, rank: rank, size: size)) }
        let request = try comm.iAllReduce(buffer, op: .sum)
        try request.wait()
        XCTAssertNil(firstMismatch(UnsafeBufferPointer(buffer), size: size, op: .sum))

        // Every rank numbered the same collectives alike.
        let sequence = comm.watchdog!.sequence
        XCTAssertEqual(sequence, 7)
        let all = try comm.allGather([Int64(sequence)])
        XCTAssertEqual(Set(all), [Int64(sequence + 0)], "ranks disagree on the collective count")
    }

    /// The last rank arrives late at a barrier; the others report arriving to each other, and the
    /// lowest waiting rank's stall warning names exactly the late rank.
    func testStallWarningNamesTheLateRank() throws {
        let comm = try Communicator.world.duplicate()
        guard comm.size >= 2 else { throw XCTSkip("needs at least 2 ranks") }
        var config = CollectiveWatchdog.Configuration(timeout: nil)
        config.reportAfter = 0.2
        config.warnEvery = 1.5
        try comm.installWatchdog(config)
        let late = comm.size - 1
        comm.watchdog!.enter("late-rank test")
        if comm.rank == late { sleep(4) }
        try comm.barrier()
        try comm.agree("rank 0's stall warning") {
            guard comm.rank == 0 else { return }
            let warning = try XCTUnwrap(comm.watchdog!.lastWarning, "rank 0 waited ~4 s but printed no stall warning")
            XCTAssertEqual(warning.missing, [late])
            XCTAssertEqual(warning.arrived, Array(0..<late))
        }
        if comm.rank != late { XCTAssertGreaterThan(comm.watchdog!.blockedSeconds, 2) }
        // The watchdog still works after a stall: the next collective completes normally.
        XCTAssertEqual(try comm.allReduce(Int64(1), op: .sum), Int64(comm.size))
    }
}

private func firstMismatch<T: TestScalar>(_ got: [T], size: Int, op: ReductionOp) -> Int? {
    got.withUnsafeBufferPointer { firstMismatch($0, size: size, op: op) }
}
