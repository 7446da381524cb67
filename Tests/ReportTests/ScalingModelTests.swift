import XCTest

@testable import DCNetReport

final class ScalingModelTests: XCTestCase {
    /// The fit recovers α and β from exact two-rank times over 1 KB … 64 MB.
    func testFitRecoversLatencyAndBandwidth() throws {
        let truth = RingAllReduceModel(alpha: 25e-6, beta: 125e6)  // 25 µs, 1 Gbit/s
        let points = (0..<9).map { i -> (bytes: Double, seconds: Double) in
            let s = Double(1024 << (2 * i))
            return (s, truth.time(ranks: 2, bytes: s))
        }
        let fit = try XCTUnwrap(RingAllReduceModel.fitTwoRanks(points))
        XCTAssertEqual(fit.alpha, truth.alpha, accuracy: truth.alpha * 1e-6)
        XCTAssertEqual(fit.beta, truth.beta, accuracy: truth.beta * 1e-6)
        XCTAssertEqual(fit.gigabitsPerSecond, 1, accuracy: 1e-6)
        XCTAssertNil(RingAllReduceModel.fitTwoRanks([(1024, 1e-3)]), "one point cannot fix two parameters")
        XCTAssertNil(RingAllReduceModel.fitTwoRanks([(1024, 2e-3), (4096, 1e-3)]), "time falling with size is no link")
    }

    func testRingTimeGrowsTowardsTwiceTheBandwidthTerm() {
        let m = RingAllReduceModel(alpha: 0, beta: 1e9)
        XCTAssertEqual(m.time(ranks: 1, bytes: 1e9), 0)
        XCTAssertEqual(m.time(ranks: 2, bytes: 1e9), 1, accuracy: 1e-12)
        XCTAssertEqual(m.time(ranks: 256, bytes: 1e9), 2 * 255 / 256, accuracy: 1e-12)
    }

    /// Communication shorter than the overlappable backward costs nothing; longer, it shows.
    func testStepHidesCommunicationBehindBackward() {
        let step = StepModel(secondsPerImage: 0.01, gradientBytes: 8e6, overlap: 0.6)  // 0.64 s of compute at b = 64
        let fast = RingAllReduceModel(alpha: 0, beta: 1e9)  // 8 ms per all-reduce on 2 ranks
        XCTAssertEqual(step.efficiency(ranks: 1, perRankBatch: 64, network: fast), 1)
        XCTAssertEqual(step.efficiency(ranks: 2, perRankBatch: 64, network: fast), 1, accuracy: 1e-12)
        let slow = RingAllReduceModel(alpha: 0, beta: 8e6)  // 1 s on 2 ranks: 1 − 0.384 exposed
        XCTAssertEqual(step.stepSeconds(ranks: 2, perRankBatch: 64, network: slow), 0.64 + (1 - 0.384), accuracy: 1e-9)
        XCTAssertLessThan(
            step.efficiency(ranks: 64, perRankBatch: 64, network: slow),
            step.efficiency(ranks: 2, perRankBatch: 64, network: slow))
    }
}
