import DCNetModels
import XCTest

@testable import DCNetLayers

/// The start of a learnable sigmoid sharpness and the `--sharpness` values it accepts.
final class LearnableSharpnessTests: XCTestCase {
    /// A learnable k = |k_raw| + 0.05 starts at the authors' k_raw = 0.7 (SphereNet code), k = 0.75; a fixed
    /// k keeps the default 0.3. An explicit --sharpness is the start value of a learnable k.
    func testLearnableSharpnessStartsAtTheAuthorsValue() {
        XCTAssertEqual(DecoupledOperator(magnitude: .tanh, angular: .sigmoid, learnableSharpness: true).sharpness, 0.75)
        XCTAssertEqual(DecoupledOperator(magnitude: .tanh, angular: .sigmoid).sharpness, 0.3)
        for (requested, start) in [(nil, 0.75), (0.5, 0.5), (0.05, 0.05)] as [(Float?, Float)] {
            let op = DecoupledOperator(
                magnitude: .tanh, angular: .sigmoid, sharpness: requested, learnableSharpness: true)
            let layer = DecoupledConv2D("k", inChannels: 2, outChannels: 3, kernel: 1, operator: op)
            guard let parameter = layer.sharpnessParameter, case .constant(let raw) = parameter.initializer else {
                return XCTFail("a learnable sharpness is a parameter with a constant start")
            }
            XCTAssertEqual(abs(raw) + 0.05, start, accuracy: 1e-6)
        }
    }

    /// k = |k_raw| + 0.05 cannot start below 0.05: such a --sharpness is refused, naming the flags and the
    /// value, instead of silently starting at 0.1 − k. A fixed k below 0.05 keeps its meaning.
    func testLearnableSharpnessBelowOffsetIsRefused() {
        let problems = DecoupledOperator(
            magnitude: .tanh, angular: .sigmoid, sharpness: 0.02, learnableSharpness: true
        ).problems()
        XCTAssertEqual(problems.count, 1, "\(problems)")
        for needle in ["--sharpness", "0.02", "--learnable-sharpness", "0.05"] {
            XCTAssert(problems.first?.contains(needle) == true, "\(needle) in \(problems)")
        }
        XCTAssertEqual(
            DecoupledOperator(magnitude: .tanh, angular: .sigmoid, sharpness: 0.05, learnableSharpness: true)
                .problems(), [])
        XCTAssertEqual(DecoupledOperator(magnitude: .tanh, angular: .sigmoid, sharpness: 0.02).problems(), [])
    }
}
