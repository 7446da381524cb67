import DCNetLayers
import DCNetModels
import Foundation
import XCTest

@testable import DCNetTraining

/// `--lr-scaling` / `--reference-batch` and `--accumulate` in the configuration: the scaled peak
/// learning rate, their validation, and checkpoints written before they existed.
final class LargeBatchConfigTests: XCTestCase {
    func testPeakLearningRateFollowsTheGlobalBatch() {
        var c = tinyConfig(tinyModel(.baseline), batch: 512, lr: 0.1)
        XCTAssertEqual(c.peakLearningRate, 0.1, "no scaling unless asked")
        c.learningRateScaling = .linear
        XCTAssertEqual(c.peakLearningRate, 0.4, accuracy: 1e-6, "linear: 0.1 × 512/128")
        c.referenceBatch = 256
        XCTAssertEqual(c.peakLearningRate, 0.2, accuracy: 1e-6, "linear: 0.1 × 512/256")
        c.learningRateScaling = .sqrt
        XCTAssertEqual(c.peakLearningRate, 0.1 * Float(2).squareRoot(), accuracy: 1e-6, "sqrt: 0.1 × √(512/256)")
        c.globalBatch = 64
        XCTAssertEqual(c.peakLearningRate, 0.05, accuracy: 1e-6, "sqrt: 0.1 × √(64/256)")
    }

    func testAccumulationMustDivideTheGlobalBatch() {
        var c = tinyConfig(tinyModel(.baseline), batch: 12)
        c.accumulation = 4
        XCTAssertEqual(c.problems(ranks: 3), [], "12 = 3 ranks × 4 micro-batches × 1 image")
        let problems = c.problems(ranks: 2)
        XCTAssertEqual(problems.count, 1, "12 does not divide by 2 ranks × 4 micro-batches")
        XCTAssertTrue(problems.first?.contains("--accumulate 4") ?? false, "\(problems)")
        c.accumulation = 0
        XCTAssertTrue(c.problems(ranks: 1).contains { $0.contains("--accumulate must be positive") })
        c.accumulation = nil
        c.referenceBatch = -1
        XCTAssertTrue(c.problems(ranks: 1).contains { $0.contains("--reference-batch") })
    }

    /// The new fields travel in checkpoints, and a configuration stored before they existed decodes
    /// as "no accumulation, no scaling".
    func testConfigurationRoundTripsAndOldOnesDecode() throws {
        var c = tinyConfig(tinyModel(.baseline), batch: 256, lr: 0.1)
        c.accumulation = 2; c.learningRateScaling = .linear; c.referenceBatch = 64
        let data = try JSONEncoder().encode(c)
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfig.self, from: data), c)
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["accumulation", "learningRateScaling", "referenceBatch"] { object.removeValue(forKey: key) }
        let old = try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(old.microBatches, 1)
        XCTAssertEqual(old.peakLearningRate, 0.1)
    }
}
