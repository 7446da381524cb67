import XCTest

@testable import MPI

final class NonblockingTests: XCTestCase {
    let comm = Communicator.world

    /// The trainer's pattern: start the reduction, keep computing, poll `test()` between
    /// chunks of work, then wait. The result must equal the blocking all-reduce.
    func testOverlappedAllReduceMatchesBlocking() throws {
        let rank = comm.rank, size = comm.size, count = 1_000_000
        let values: [Float] = input(count, rank: rank, size: size)
        var blocking = values
        try comm.allReduce(&blocking, op: .sum)

        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        _ = buffer.initialize(from: values)
        let request = try comm.iAllReduce(buffer, op: .sum)

        // Local work that does not touch `buffer`, interleaved with progress polls.
        var work: Double = 0
        for chunk in 0..<200 {
            for j in 0..<2_000 { work += Double((chunk * 2_000 + j) % 13) * 0.5 }
            if try request.test() {
                XCTAssertTrue(request.isComplete, "test() returned true but the request is not complete")
                break
            }
        }
        _ = work
        try request.wait()
        XCTAssertTrue(request.isComplete)
        XCTAssertTrue(try request.test(), "test() after completion must stay true")
        try request.wait()  // idempotent

        XCTAssertNil(firstMismatch(UnsafeBufferPointer(buffer), blocking), "nonblocking differs from blocking")
        XCTAssertNil(firstMismatch(blocking, reduced(count, size: size, op: .sum)))
    }

    /// A request keeps its communicator alive: MPI progresses the collective on it until the request
    /// is done (or, dropped in flight, until the process aborts), so the communicator must not be
    /// freed first even when its owner lets go of it before the request.
    func testRequestKeepsItsCommunicatorAlive() throws {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 16)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1)
        weak var weakSide: Communicator?
        var request: Request?
        do {
            let side = try comm.duplicate()
            weakSide = side
            request = try side.iAllReduce(buffer, op: .sum)
        }
        XCTAssertNotNil(weakSide, "the communicator was released while its request was alive")
        try request?.wait()
        XCTAssertEqual(buffer[0], Float(comm.size))
        request = nil
        XCTAssertNil(weakSide, "the communicator outlived its last request")
    }

    /// Dropping an incomplete request (an error unwinding past it) must not wait for it: the peers
    /// may never start the collective, and the caller's MPI_Abort would never be reached. Rank 0
    /// drops its request while the others have not started theirs, and they start only after
    /// rank 0 has reached the barrier; a blocking deinit deadlocks here.
    func testDroppingAnIncompleteRequestDoesNotBlock() throws {
        let rank = comm.rank, size = comm.size
        guard size > 1 else { return }  // one rank: the all-reduce completes at once
        let side = try comm.duplicate()
        let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 1024)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: Int32(rank + 1))
        if rank == 0 {
            var request: Request? = try side.iAllReduce(buffer, op: .sum)
            let start = MPIRuntime.wallTime()
            XCTAssertNotNil(request)
            request = nil
            XCTAssertLessThan(MPIRuntime.wallTime() - start, 1, "dropping the request waited for it")
            XCTAssertTrue(MPIRuntime.hasAbandonedRequests, "the dropped request is not kept")
            XCTAssertThrowsError(try MPIRuntime.finalize(), "finalising with an operation in flight")
        }
        try comm.barrier()
        if rank != 0 { try side.iAllReduce(buffer, op: .sum).wait() }
        try comm.barrier()  // rank 0 inside MPI, so the abandoned operation progresses
        let deadline = MPIRuntime.wallTime() + 30
        while MPIRuntime.hasAbandonedRequests && MPIRuntime.wallTime() < deadline {}
        XCTAssertFalse(MPIRuntime.hasAbandonedRequests, "the dropped request never completed")
        let total = Int32(size * (size + 1) / 2)
        XCTAssertEqual(buffer[0], total)
        XCTAssertEqual(buffer[1023], total)
    }

    /// An incomplete request dropped by an error keeps the owner of its buffer alive while it is in
    /// flight (MPI may still write the buffer), and lets go once it has completed.
    func testADroppedRequestKeepsItsBufferOwnerAlive() throws {
        final class Owner {
            let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 256)
            deinit { buffer.deallocate() }
        }
        let rank = comm.rank, size = comm.size
        guard size > 1 else { return }  // one rank: the all-reduce completes at once
        let side = try comm.duplicate()
        weak var weakOwner: Owner?
        do {
            let owner = Owner()
            weakOwner = owner
            owner.buffer.initialize(repeating: 1)
            if rank == 0 {
                _ = try side.iAllReduce(owner.buffer, op: .sum, owner: owner)  // dropped at once, in flight
                XCTAssertTrue(MPIRuntime.hasAbandonedRequests)
            } else {
                try comm.barrier()
                try side.iAllReduce(owner.buffer, op: .sum, owner: owner).wait()
            }
        }
        if rank == 0 {
            XCTAssertNotNil(weakOwner, "the buffer's owner was freed while MPI could still write the buffer")
            try comm.barrier()
        }
        let deadline = MPIRuntime.wallTime() + 30
        while MPIRuntime.hasAbandonedRequests && MPIRuntime.wallTime() < deadline {}
        XCTAssertFalse(MPIRuntime.hasAbandonedRequests, "the dropped request never completed")
        XCTAssertNil(weakOwner, "the buffer's owner outlived its completed request")
        try comm.barrier()
    }

    /// Several requests in flight at once (one per layer), completed together.
    func testSeveralRequestsInFlight() throws {
        let rank = comm.rank, size = comm.size
        let counts = [0, 1, 7, 4099]
        let buffers = counts.map { UnsafeMutableBufferPointer<Double>.allocate(capacity: $0) }
        defer { buffers.forEach { $0.deallocate() } }
        for (b, n) in zip(buffers, counts) {
            for i in 0..<n { b[i] = Double(pattern(i, rank: rank, size: size)) }
        }
        let ops: [ReductionOp] = [.sum, .max, .min, .sum]
        let requests = try zip(buffers, ops).map { try comm.iAllReduce($0, op: $1) }
        while try !requests.allSatisfy({ try $0.test() }) {}
        try Request.waitAll(requests)
        for (b, op) in zip(buffers, ops) {
            XCTAssertNil(firstMismatch(UnsafeBufferPointer(b), size: size, op: op), "\(op) count \(b.count)")
        }
    }

    func testInt32AndUInt8Nonblocking() throws {
        let rank = comm.rank, size = comm.size
        var ints = (0..<4099).map { Int32(pattern($0, rank: rank, size: size)) }
        var bytes = (0..<4099).map { UInt8(pattern($0, rank: rank, size: size)) }
        try ints.withUnsafeMutableBufferPointer { b in try comm.iAllReduce(b, op: .max).wait() }
        try bytes.withUnsafeMutableBufferPointer { b in try comm.iAllReduce(b, op: .sum).wait() }
        XCTAssertNil(ints.withUnsafeBufferPointer { firstMismatch($0, size: size, op: .max) })
        XCTAssertNil(bytes.withUnsafeBufferPointer { firstMismatch($0, size: size, op: .sum) })
    }
}
