import MPI
import XCTest

/// `Communicator.agree` under 1, 2 and 3 ranks (scripts/test runs this class under mpirun): every
/// rank learns the same outcome, with every failing rank's message, lowest rank first.
final class AgreementTests: XCTestCase {
    private var comm: Communicator { Communicator.world }

    struct Refused: Error, CustomStringConvertible { let description: String }

    func testSuccessReturnsEachRanksOwnValue() throws {
        let value = try comm.agree("doubling the rank") { comm.rank * 2 }
        XCTAssertEqual(value, comm.rank * 2)
    }

    func testTheVoteIsTheLargestOverRanks() throws {
        let (value, vote) = try comm.agree("voting", vote: Int32(comm.rank == comm.size - 1 ? 15 : comm.rank)) {
            "done"
        }
        XCTAssertEqual(value, "done")
        XCTAssertEqual(vote, 15)
    }

    /// Every rank but 0 fails with its own message: all ranks throw the same failure, naming the
    /// ranks in order with their messages.
    func testEveryFailingRankIsNamedLowestFirst() throws {
        guard comm.size > 1 else {
            // One rank: its own failure.
            XCTAssertThrowsError(try comm.agree("the only rank") { throw Refused(description: "no") }) { error in
                XCTAssertEqual("\(error)", "the only rank failed on rank 0: no")
            }
            return
        }
        do {
            _ = try comm.agree("reading a file") { () throws -> Int in
                if comm.rank > 0 { throw Refused(description: "file \(comm.rank) is damaged") }
                return 1
            }
            XCTFail("rank \(comm.rank): no failure although ranks 1... failed")
        } catch let failure as AgreedFailure {
            XCTAssertEqual(failure.ranks, Array(1..<comm.size))
            XCTAssertEqual(failure.failures.map(\.message), (1..<comm.size).map { "file \($0) is damaged" })
            if comm.size == 2 {
                XCTAssertEqual("\(failure)", "reading a file failed on rank 1: file 1 is damaged")
            } else {
                XCTAssertEqual(
                    "\(failure)",
                    "reading a file failed on ranks 1, 2:\n  rank 1: file 1 is damaged\n  rank 2: file 2 is damaged")
            }
        }
    }

    /// The same message on several ranks is said once, with the ranks that share it.
    func testTheSameMessageOnSeveralRanksIsGrouped() throws {
        XCTAssertThrowsError(try comm.agree("checking the flags") { throw Refused(description: "--lr is negative") }) {
            error in
            let all = (0..<comm.size).map(String.init).joined(separator: ", ")
            XCTAssertEqual(
                "\(error)", "checking the flags failed on \(comm.size == 1 ? "rank" : "ranks") \(all): --lr is negative"
            )
        }
    }

    /// After a failure the ranks are still in step: the next collective completes on every rank.
    func testTheRanksStayInStepAfterAFailure() throws {
        _ = try? comm.agree("failing on rank 0") { if comm.rank == 0 { throw Refused(description: "x") } }
        XCTAssertEqual(try comm.allReduce(Int32(1), op: .sum), Int32(comm.size))
    }
}
