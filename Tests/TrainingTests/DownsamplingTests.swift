import DCNetLayers
import DCNetModels
import DCNetRandom
import DCNetTensor
import XCTest

/// `--pooling average` exists for the ReLU-free comparison: with max pooling a network without
/// ReLU stays non-linear through the pooling, so the baseline is not the linear model the paper's
/// claim is about. Average pooling removes that: the baseline without ReLU is then affine in its
/// input (BatchNorm in evaluation is affine), while TanhConv is not.
final class DownsamplingTests: XCTestCase {
    /// The largest deviation of f(x/2 + y/2) from f(x)/2 + f(y)/2, relative to the outputs' size.
    private func affineDefect(_ model: ModelConfig) -> Float {
        let network = model.makeNetwork(batch: 3)
        var rng = Xoshiro256StarStar(seed: 5)
        network.initializeParameters(using: &rng)
        let input = network.arena.tensor(network.inputShape)
        let n = 3072
        for i in 0..<n {
            let x = Float.random(in: -1...1, using: &rng), y = Float.random(in: -1...1, using: &rng)
            input.data[i] = x; input.data[n + i] = y; input.data[2 * n + i] = (x + y) / 2
        }
        let logits = network.forward(input, mode: .evaluation)
        let k = model.classes
        var defect: Float = 0, scale: Float = 0
        for c in 0..<k {
            let fx = logits.data[c], fy = logits.data[k + c], fm = logits.data[2 * k + c]
            defect = max(defect, abs(fm - (fx + fy) / 2))
            scale = max(scale, abs(fx), abs(fy))
        }
        return defect / max(scale, 1e-12)
    }

    private func cnn9(_ convolution: ConvolutionKind, _ pooling: Downsampling) -> ModelConfig {
        ModelConfig(
            architecture: .cnn9, widthMultiplier: 0.125, convolution: convolution, relu: false,
            downsampling: pooling)
    }

    func testAveragePoolingMakesTheReLUFreeBaselineAffine() {
        XCTAssertLessThan(affineDefect(cnn9(.baseline, .average)), 1e-4)
        XCTAssertGreaterThan(affineDefect(cnn9(.baseline, .max)), 2e-3, "max pooling is not affine")
        let tanh = ConvolutionKind.decoupled(DecoupledOperator(magnitude: .tanh, angular: .cosine))
        XCTAssertGreaterThan(affineDefect(cnn9(tanh, .average)), 2e-3, "TanhConv is non-linear by itself")
    }

    func testMaxPoolingIsStoredAsBeforeAndAverageIsCNN9Only() {
        XCTAssertNil(cnn9(.baseline, .max).downsampling, "max is what older configurations meant")
        XCTAssertEqual(cnn9(.baseline, .average).downsampling, .average)
        var resnet = ModelConfig(architecture: .resnet32, downsampling: .average)
        XCTAssertTrue(resnet.problems().contains { $0.contains("--pooling average") }, "\(resnet.problems())")
        resnet.downsampling = nil
        XCTAssertEqual(resnet.problems(), [])
    }
}
