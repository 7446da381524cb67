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
