import BLAS
import DCNetRandom
import DCNetTensor
import XCTest

@testable import DCNetLayers

/// Every convolution and linear layer in bf16 mode: gradient checks (bf16 analytic gradients
/// against central differences of the fp32 layer), the bounds of the decoupled operators, and the
/// hardware path against the reference path.
///
/// Tolerance: the fp32 checks' 2e-2 (finite differences in Float) plus the bf16 rounding of two GEMM
/// levels, the forward product the backward evaluates the operator at and the backward product
/// itself, each with two operands of relative error 2⁻⁸: 2e-2 + 4·2⁻⁸ ≈ 3.6e-2 for im2col + GEMM.
///
/// Winograd F(4×4, 3×3) multiplies in the transformed domain, whose values are several times larger
/// than the outputs the output transform cancels them down to, so the same operand rounding costs
/// more: a 64-channel layer's bf16 forward is off by 2.2% against im2col's 0.24% (9×;
/// `testWinogradAmplifiesTheOperandRounding` pins both). Its layers get κ = 4 times the bf16 allowance.
final class BF16LayerTests: XCTestCase {
    static let winogradAmplification = 4.0
    static func tolerance(_ algorithm: ConvolutionAlgorithm) -> Double {
        2e-2 + 4.0 / 256 * (algorithm == .winograd ? winogradAmplification : 1)
    }
    static let tolerance = tolerance(.gemm)

    /// The bf16 precisions this host runs: the reference path always, oneDNN where it can.
    static var precisions: [Precision] {
        BF16GEMMTests.hardwareSkipReason == nil ? [.bf16Reference, .bf16] : [.bf16Reference]
    }

    override func setUp() {
        if let reason = BF16GEMMTests.hardwareSkipReason {
            print("BF16LayerTests: reference path only: \(reason)")
        }
    }

    func testBaselineConvolutionBothAlgorithms() {
        for precision in Self.precisions {
            for algorithm in ConvolutionAlgorithm.allCases {
                for (k, s, p) in [(1, 1, 0), (3, 1, 1), (3, 1, 0), (3, 2, 1), (5, 1, 2), (1, 2, 0)] {
                    func make(_ precision: Precision) -> Conv2D {
                        Conv2D(
                            "conv-k\(k)s\(s)p\(p)-\(algorithm)-\(precision)", inChannels: 3, outChannels: 4, kernel: k,
                            stride: s, padding: p, bias: true, algorithm: algorithm, precision: precision)
                    }
                    let winograd = algorithm == .winograd && k == 3 && s == 1 && p == 1
                    assertGradientsMatch(
                        make(precision), input: Shape(n: 2, c: 3, h: 6, w: 7),
                        tolerance: Self.tolerance(winograd ? .winograd : .gemm), reference: make(.fp32))
                }
            }
        }
    }

    func testLinear() {
        for precision in Self.precisions {
            for shape in [Shape(n: 4, c: 12), Shape(n: 3, c: 3, h: 2, w: 2)] {
                assertGradientsMatch(
                    Linear("fc-\(precision)", inFeatures: 12, outFeatures: 5, precision: precision), input: shape,
                    tolerance: Self.tolerance, reference: Linear("fc", inFeatures: 12, outFeatures: 5))
            }
        }
    }

    func testDecoupledEveryMagnitudeAndAngularBothAlgorithms() {
        for precision in Self.precisions {
            for algorithm in ConvolutionAlgorithm.allCases {
                for m in DecoupledGradientTests.magnitudes {
                    for a in DecoupledGradientTests.angulars {
                        let op = DecoupledOperator(magnitude: m, angular: a, radius: .learnable(decay: 0.9))
                        func make(_ precision: Precision) -> DecoupledConv2D {
                            DecoupledConv2D(
                                "\(m)-\(a)-\(algorithm)-\(precision)", inChannels: 3, outChannels: 4, kernel: 3,
                                stride: 1, padding: 1, operator: op, algorithm: algorithm, precision: precision)
                        }
                        assertGradientsMatch(
                            make(precision), input: Shape(n: 2, c: 3, h: 5, w: 5),
                            tolerance: Self.tolerance(algorithm),
                            prepare: DecoupledGradientTests.separatePatchNorms(op), reference: make(.fp32))
                    }
                }
            }
        }
    }

    func testDecoupledGeometriesAndWeightedForms() {
        for precision in Self.precisions {
            for (k, s, p) in [(1, 1, 0), (3, 2, 1), (3, 1, 0), (5, 1, 2)] {
                let op = DecoupledOperator(magnitude: .tanh)
                func make(_ precision: Precision) -> DecoupledConv2D {
                    DecoupledConv2D(
                        "k\(k)s\(s)p\(p)-\(precision)", inChannels: 3, outChannels: 5, kernel: k, stride: s,
                        padding: p, operator: op, precision: precision)
                }
                assertGradientsMatch(
                    make(precision), input: Shape(n: 2, c: 3, h: 6, w: 7),
                    tolerance: Self.tolerance(k == 3 && s == 1 && p == 1 ? .winograd : .gemm), reference: make(.fp32))
            }
            for w in [Weighting.linear, .nonlinear, .separable] {
                let op = DecoupledOperator(
                    magnitude: .tanh, angular: .sigmoid, weighting: w, radius: .learnable(decay: 0.9))
                func make(_ precision: Precision) -> DecoupledConv2D {
                    DecoupledConv2D(
                        "\(w)-\(precision)", inChannels: 3, outChannels: 4, kernel: 3, padding: 1, operator: op,
                        precision: precision)
                }
                assertGradientsMatch(
                    make(precision), input: Shape(n: 2, c: 3, h: 5, w: 5), tolerance: Self.tolerance(.winograd),
                    reference: make(.fp32))
            }
        }
    }

    /// The forward error of a 64-channel 3×3 layer in bf16 against fp32: within one operand rounding
    /// (2⁻⁸) for im2col + GEMM, and within 12·2⁻⁸ for Winograd, whose transforms amplify it (measured
    /// 0.24% and 2.2% on Zen 4).
    func testWinogradAmplifiesTheOperandRounding() {
        for precision in Self.precisions {
            var errors: [ConvolutionAlgorithm: Double] = [:]
            for algorithm in ConvolutionAlgorithm.allCases {
                var outputs: [[Float]] = []
                for p in [Precision.fp32, precision] {
                    let layer = Conv2D(
                        "c", inChannels: 64, outChannels: 64, kernel: 3, padding: 1, bias: false, algorithm: algorithm,
                        precision: p)
                    let arena = Arena(), shape = Shape(n: 2, c: 64, h: 16, w: 16)
                    _ = layer.build(input: shape, arena: arena)
                    var rng = SplitMix64(seed: 9)
                    bindRandomParameters(layer, arena: arena, rng: &rng)
                    let x = arena.tensor(shape)
                    for i in 0..<x.count { x.data[i] = max(0, rng.normal()) }  // post-ReLU activations
                    outputs.append(layer.forward(x, mode: .training).toArray())
                }
                let diff = zip(outputs[1], outputs[0]).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
                errors[algorithm] = (diff / outputs[0].map { Double($0) * Double($0) }.reduce(0, +)).squareRoot()
            }
            XCTAssertLessThan(errors[.gemm]!, 1.0 / 256, "\(precision) im2col")
            XCTAssertLessThan(errors[.winograd]!, 12.0 / 256, "\(precision) Winograd")
            XCTAssertGreaterThan(errors[.gemm]!, 1.0 / 4096, "\(precision): the operands are rounded")
        }
    }

    /// Bounded operators stay within [−α, α] and |cos θ| = |u|/||x|| ≤ 1 in bf16, also where θ is 0
    /// or π (filters parallel to the patches), where the rounding would otherwise push |u| past ||x||.
    func testDecoupledOutputsStayBounded() {
        let bounded: [DecoupledOperator] =
            [MagnitudeFunction.sphere, .ball, .tanh].flatMap { m in
                DecoupledGradientTests.angulars.map { DecoupledOperator(magnitude: m, angular: $0, alpha: 1.5) }
            }
            + [Weighting.nonlinear, .separable].map {
                DecoupledOperator(magnitude: .tanh, angular: .cosine, weighting: $0, alpha: 0.7)
            }
        for precision in Self.precisions {
            for algorithm in ConvolutionAlgorithm.allCases {
                for op in bounded {
                    for parallel in [true, false] {
                        let layer = DecoupledConv2D(
                            "bounded", inChannels: 8, outChannels: 6, kernel: 3, padding: 1, operator: op,
                            algorithm: algorithm, precision: precision)
                        let arena = Arena(), shape = Shape(n: 2, c: 8, h: 8, w: 8)
                        _ = layer.build(input: shape, arena: arena)
                        var rng = SplitMix64(seed: 5)
                        bindRandomParameters(layer, arena: arena, rng: &rng)
                        let x = arena.tensor(shape)
                        if parallel {
                            // Constant images and filters ±(a constant with a small ripple):
                            // interior patches are (anti)parallel to the filters. 1.004 rounds up
                            // to the bf16 1.0078 (+0.38%) and 1/√72 down (−0.15%), so without the
                            // clamp u would exceed ||x|| by about 0.2%.
                            for i in 0..<x.count { x.data[i] = 1.004 }
                            for i in 0..<layer.weight.count {
                                layer.weight.value[i] = (i / 72 % 2 == 0 ? 1 : -1) * (0.7 + 1e-5 * Float(i % 5))
                            }
                        } else {
                            for i in 0..<x.count { x.data[i] = 2 * rng.normal() }
                        }
                        let y = layer.forward(x, mode: .training)
                        let bound = op.alpha
                        for i in 0..<y.count {
                            XCTAssertLessThanOrEqual(abs(y.data[i]), bound, "\(op) \(precision) \(algorithm) y[\(i)]")
                        }
                        // The responses the operator saw: |u| ≤ ||x|| element by element.
                        let P = 64
                        for n in 0..<2 {
                            for k in 0..<6 {
                                for p in 0..<P {
                                    let u = layer.responseForTesting(n: n, k: k, p: p)
                                    let xn = layer.patchNormForTesting(n: n, p: p)
                                    XCTAssertLessThanOrEqual(abs(u), xn, "|cos θ| ≤ 1: \(op) \(precision) \(algorithm)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// oneDNN's layers agree with the reference path's (same rounding, another summation order).
    func testHardwareLayersMatchReferenceLayers() throws {
        if let reason = BF16GEMMTests.hardwareSkipReason { throw XCTSkip(reason) }
        for algorithm in ConvolutionAlgorithm.allCases {
            var outputs: [[Float]] = [], gradients: [[Float]] = []
            for precision in [Precision.bf16, .bf16Reference] {
                let layer = Conv2D(
                    "c", inChannels: 16, outChannels: 24, kernel: 3, padding: 1, algorithm: algorithm,
                    precision: precision)
                let arena = Arena(), shape = Shape(n: 3, c: 16, h: 12, w: 12)
                let out = layer.build(input: shape, arena: arena)
                var rng = SplitMix64(seed: 9)
                bindRandomParameters(layer, arena: arena, rng: &rng)
                let x = arena.tensor(shape), dy = arena.tensor(out)
                for i in 0..<x.count { x.data[i] = rng.normal() }
                for i in 0..<dy.count { dy.data[i] = rng.normal() }
                outputs.append(layer.forward(x, mode: .training).toArray())
                let dx = layer.backward(dy, needInputGradient: true)!.toArray()
                gradients.append(dx + Array(layer.weight.gradientBuffer))
            }
            for (a, b) in [(outputs[0], outputs[1]), (gradients[0], gradients[1])] {
                let diff = zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
                let norm = b.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
                // Only the fp32 summation order differs (and the rounding of intermediate results to
                // bf16 operands of the next product, which the same order of operations makes equal).
                XCTAssertLessThan(diff / norm, 1e-3, "\(algorithm)")
            }
        }
    }
}
