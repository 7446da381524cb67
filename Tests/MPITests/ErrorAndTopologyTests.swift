import CMPI
import XCTest

@testable import MPI

/// Every throwing call here is rejected identically on all ranks before any MPI call,
/// so no rank is left waiting in a collective the others skipped.
final class ErrorTests: XCTestCase {
    let comm = Communicator.world

    private func assertMPIError(
        _ errorClass: Int32, _ operation: String,
        file: StaticString = #filePath, line: UInt = #line,
        _ body: () throws -> Void
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let e = error as? MPIError else {
                return XCTFail("expected MPIError, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(e.errorClass, errorClass, "\(e)", file: file, line: line)
            XCTAssertEqual(e.operation, operation, file: file, line: line)
            XCTAssertTrue(e.description.contains(operation), file: file, line: line)
            XCTAssertFalse(e.message.isEmpty, file: file, line: line)
        }
    }

    func testBadRootThrows() {
        var values: [Float] = [1, 2, 3]
        var out: [Float] = [0, 0, 0]
        for root in [-1, comm.size, comm.size + 5] {
            assertMPIError(MPI_ERR_ROOT, "MPI_Bcast") { try comm.broadcast(&values, root: root) }
            assertMPIError(MPI_ERR_ROOT, "MPI_Bcast") { _ = try comm.broadcast(Int32(1), root: root) }
            assertMPIError(MPI_ERR_ROOT, "MPI_Reduce") { try comm.reduce(values, into: &out, root: root) }
            assertMPIError(MPI_ERR_ROOT, "MPI_Reduce") { try comm.reduce(&values, root: root) }
        }
        XCTAssertEqual(values, [1, 2, 3], "a rejected call must not touch the buffer")
        // The communicator is still usable afterwards.
        XCTAssertEqual(try comm.allReduce(Int32(1)), Int32(comm.size))
    }

    func testMismatchedCountsThrow() {
        let send: [Double] = [1, 2, 3]
        var shorter = [Double](repeating: 0, count: 2)
        var longer = [Double](repeating: 0, count: 4)
        assertMPIError(MPI_ERR_COUNT, "MPI_Allreduce") { try comm.allReduce(send, into: &shorter) }
        assertMPIError(MPI_ERR_COUNT, "MPI_Allreduce") { try comm.allReduce(send, into: &longer) }
        assertMPIError(MPI_ERR_COUNT, "MPI_Reduce") { try comm.reduce(send, into: &shorter, root: 0) }
        var gatherTooSmall = [Double](repeating: 0, count: send.count * comm.size - 1)
        var gatherTooLarge = [Double](repeating: 0, count: send.count * comm.size + 1)
        assertMPIError(MPI_ERR_COUNT, "MPI_Allgather") { try comm.allGather(send, into: &gatherTooSmall) }
        assertMPIError(MPI_ERR_COUNT, "MPI_Allgather") { try comm.allGather(send, into: &gatherTooLarge) }
        XCTAssertEqual(shorter, [0, 0])
        XCTAssertEqual(try comm.allReduce(Int32(1)), Int32(comm.size))
    }

    /// An error detected by MPI itself comes back as a code, not an abort, because the
    /// wrapper installed MPI_ERRORS_RETURN; MPIError turns it into class and text.
    func testMPIReportedErrorIsReturnedNotFatal() {
        var x: Int32 = 0
        let rc = MPI_Bcast(&x, 1, dcnet_mpi_int32(), Int32(comm.size), comm.handle)
        XCTAssertNotEqual(rc, MPI_SUCCESS)
        let error = MPIError(operation: "MPI_Bcast", code: rc)
        XCTAssertEqual(error.errorClass, MPI_ERR_ROOT)
        XCTAssertFalse(error.message.isEmpty)
        XCTAssertTrue(error.description.hasPrefix("MPI_Bcast failed: "), error.description)
        XCTAssertThrowsError(try mpiCheck(rc, "MPI_Bcast"))
    }
}

final class TopologyTests: XCTestCase {
    let comm = Communicator.world

    func testRuntime() {
        XCTAssertTrue(MPIRuntime.isActive)
        MPIRuntime.initialize()  // idempotent
        XCTAssertGreaterThanOrEqual(MPIRuntime.threadLevel, dcnet_mpi_thread_funneled())
        XCTAssertTrue(Communicator.world === comm)
    }

    func testRankAndSize() throws {
        XCTAssertGreaterThanOrEqual(comm.size, 1)
        XCTAssertTrue((0..<comm.size).contains(comm.rank))
        let ranks = try comm.allGather([Int64(comm.rank)])
        XCTAssertEqual(ranks, (0..<comm.size).map(Int64.init), "every rank is distinct")
        XCTAssertEqual(comm.isRoot, comm.rank == 0)
    }

    func testLocalRankAndSize() throws {
        XCTAssertGreaterThanOrEqual(comm.localSize, 1)
        XCTAssertLessThanOrEqual(comm.localSize, comm.size)
        XCTAssertTrue((0..<comm.localSize).contains(comm.localRank))
        // One leader per node, and the node sizes add up to the job size.
        let nodes = try comm.allReduce(Int64(comm.localRank == 0 ? 1 : 0))
        let covered = try comm.allReduce(Int64(comm.localRank == 0 ? comm.localSize : 0))
        XCTAssertGreaterThanOrEqual(nodes, 1)
        XCTAssertEqual(covered, Int64(comm.size))
        // Ranks on one node agree on localSize.
        XCTAssertEqual(
            try comm.allReduce(Int64(comm.localSize), op: .max),
            try comm.allReduce(Int64(comm.localSize), op: .min),
            "single-host test run: every node has the same number of ranks")
    }

    func testSplitAndDuplicate() throws {
        let dup = try comm.duplicate()
        XCTAssertEqual(dup.rank, comm.rank)
        XCTAssertEqual(dup.size, comm.size)
        XCTAssertEqual(try dup.allReduce(Int32(1)), Int32(comm.size))

        let parity = comm.rank % 2
        let half = try comm.agree("splitting by parity") {
            try XCTUnwrap(try comm.split(color: parity, key: comm.rank))
        }
        XCTAssertEqual(half.size, (comm.size + 1 - parity) / 2)
        XCTAssertEqual(half.rank, comm.rank / 2)
        let members = try half.allGather([Int32(comm.rank)])
        XCTAssertEqual(members, stride(from: parity, to: comm.size, by: 2).map(Int32.init))

        let none = try comm.split(color: comm.rank == 0 ? nil : 1)
        XCTAssertEqual(none == nil, comm.rank == 0)
        if let none { XCTAssertEqual(none.size, comm.size - 1) }
    }
}
