import XCTest

@testable import MPI

final class CollectiveTests: XCTestCase {
    let comm = Communicator.world

    private func rootPattern(_ i: Int) -> Double { Double(i) * 0.25 - 3 }

    private func checkBroadcast(root: Int) throws {
        let count = 4099
        var values =
            comm.rank == root
            ? (0..<count).map(rootPattern)
            : [Double](repeating: Double(-comm.rank - 1), count: count)
        try comm.broadcast(&values, root: root)
        XCTAssertEqual(values, (0..<count).map(rootPattern), "broadcast from root \(root)")

        let seed = try comm.broadcast(comm.rank == root ? Int64(1234 + root) : -1, root: root)
        XCTAssertEqual(seed, Int64(1234 + root))

        var empty: [UInt8] = []
        try comm.broadcast(&empty, root: root)
        XCTAssertEqual(empty, [])
    }

    func testBroadcastFromFirstRank() throws { try checkBroadcast(root: 0) }
    func testBroadcastFromLastRank() throws { try checkBroadcast(root: comm.size - 1) }

    func testBroadcastPointerOverloadUInt16() throws {
        let buffer = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: 1000)
        defer { buffer.deallocate() }
        for i in 0..<1000 { buffer[i] = comm.rank == 0 ? UInt16(i * 37 & 0xFFFF) : 0 }
        try comm.broadcast(buffer, root: 0)
        XCTAssertTrue((0..<1000).allSatisfy { buffer[$0] == UInt16(($0 * 37) & 0xFFFF) })
    }

    func testAllGatherIsOrderedByRank() throws {
        let perRank = 3
        let send = (0..<perRank).map { Int32(comm.rank * 100 + $0) }
        var receive = [Int32](repeating: -1, count: perRank * comm.size)
        try comm.allGather(send, into: &receive)
        let want = (0..<comm.size).flatMap { r in (0..<perRank).map { Int32(r * 100 + $0) } }
        XCTAssertEqual(receive, want)

        XCTAssertEqual(try comm.allGather([Float(comm.rank)]), (0..<comm.size).map(Float.init))
        XCTAssertEqual(try comm.allGather([UInt8]()), [])
    }

    private func checkReduce(root: Int) throws {
        let rank = comm.rank, size = comm.size, count = 4099
        for op in allOps {
            let send = (0..<count).map { Int64(pattern($0, rank: rank, size: size)) }
            var receive = [Int64](repeating: -7, count: count)
            try comm.reduce(send, into: &receive, op: op, root: root)
            if rank == root {
                XCTAssertNil(
                    receive.withUnsafeBufferPointer { firstMismatch($0, size: size, op: op) },
                    "reduce \(op) to root \(root)")
            } else {
                XCTAssertTrue(receive.allSatisfy { $0 == -7 }, "reduce wrote a non-root receive buffer")
            }

            var inPlace = (0..<count).map { Float(pattern($0, rank: rank, size: size)) }
            try comm.reduce(&inPlace, op: op, root: root)
            if rank == root {
                XCTAssertNil(
                    inPlace.withUnsafeBufferPointer { firstMismatch($0, size: size, op: op) },
                    "in-place reduce \(op) to root \(root)")
            } else {
                XCTAssertNil(
                    inPlace.indices.first { inPlace[$0] != Float(pattern($0, rank: rank, size: size)) },
                    "in-place reduce changed a non-root buffer")
            }
        }
    }

    func testReduceToFirstRank() throws { try checkReduce(root: 0) }
    func testReduceToLastRank() throws { try checkReduce(root: comm.size - 1) }

    func testBarrier() throws {
        for _ in 0..<3 { try comm.barrier() }
    }
}
