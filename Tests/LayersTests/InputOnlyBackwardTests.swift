import DCNetRandom
import DCNetTensor
import XCTest

@testable import DCNetLayers

/// The attacks' backward (`needParameterGradients: false`) must give exactly the training
/// backward's dL/dx and leave every parameter gradient as it was: it skips products, it must not
/// change what the remaining ones compute.
final class InputOnlyBackwardTests: XCTestCase {
    /// A value no backward writes: a parameter gradient still holding it was not touched.
    private let untouched: Float = 12345

    private func assertInputOnlyBackwardMatches(
        _ layer: Layer, input shape: Shape, mode: Mode, file: StaticString = #filePath, line: UInt = #line
    ) {
        var rng = SplitMix64(seed: 11)
        let arena = Arena()
        let outShape = layer.build(input: shape, arena: arena)
        bindRandomParameters(layer, arena: arena, rng: &rng)
        XCTAssertFalse(
            layer.parameters.isEmpty, "\(layer.name) has no parameters to leave alone", file: file, line: line)
        let x = arena.tensor(shape), dy = arena.tensor(outShape)
        for i in 0..<x.count { x.data[i] = rng.normal() }
        for i in 0..<dy.count { dy.data[i] = rng.normal() }
        // Running statistics for the evaluation-mode passes.
        for _ in 0..<3 { _ = layer.forward(x, mode: .training) }

        // A training forward moves the running statistics (BatchNorm's moments are taken around
        // its running mean), so both passes start from the same state.
        let state = layer.state.map { Array(UnsafeBufferPointer(start: $0.data, count: $0.count)) }
        func restoreState() {
            for (buffer, saved) in zip(layer.state, state) { buffer.data.update(from: saved, count: buffer.count) }
        }
        _ = layer.forward(x, mode: mode)
        let full = layer.backward(dy, needInputGradient: true, needParameterGradients: true)!.toArray()
        let written = layer.parameters.map { p in (0..<p.count).map { p.gradient[$0] } }
        XCTAssertTrue(
            written.contains { $0.contains { $0 != 0 } }, "\(layer.name): the training backward wrote no gradient",
            file: file, line: line)

        for p in layer.parameters { p.gradient.update(repeating: untouched, count: p.count) }
        restoreState()
        _ = layer.forward(x, mode: mode)
        let inputOnly = layer.backward(dy, needInputGradient: true, needParameterGradients: false)!.toArray()
        XCTAssertEqual(inputOnly, full, "\(layer.name) (\(mode)): dL/dx differs", file: file, line: line)
        for p in layer.parameters {
            let changed = (0..<p.count).filter { p.gradient[$0] != untouched }
            XCTAssertTrue(
                changed.isEmpty, "\(layer.name) (\(mode)): \(p.name) gradient written at \(changed.prefix(5))",
                file: file, line: line)
        }
    }

    func testConvolutionsSkipTheirFilterGradients() {
        for algorithm in ConvolutionAlgorithm.allCases {
            for mode in [Mode.training, .evaluation] {
                // 3×3 stride 1 pad 1 takes Winograd (with .winograd), the others im2col + GEMM
                // (the adjoint path for stride 1, the packing path for stride 2).
                for (k, s, p) in [(3, 1, 1), (3, 2, 1), (1, 1, 0)] {
                    assertInputOnlyBackwardMatches(
                        Conv2D(
                            "conv-\(algorithm)-k\(k)s\(s)", inChannels: 3, outChannels: 5, kernel: k, stride: s,
                            padding: p, algorithm: algorithm),
                        input: Shape(n: 2, c: 3, h: 8, w: 8), mode: mode)
                }
                let operators = [
                    DecoupledOperator(magnitude: .tanh, angular: .cosine, radius: .learnable(decay: 0.9)),
                    DecoupledOperator(
                        magnitude: .ball, angular: .sigmoid, radius: .learnable(decay: 0.9), learnableSharpness: true),
                    DecoupledOperator(magnitude: .tanh, weighting: .nonlinear),
                ]
                for (i, op) in operators.enumerated() {
                    assertInputOnlyBackwardMatches(
                        DecoupledConv2D(
                            "decoupled-\(algorithm)-\(i)", inChannels: 3, outChannels: 4, kernel: 3, padding: 1,
                            operator: op, algorithm: algorithm),
                        input: Shape(n: 2, c: 3, h: 8, w: 8), mode: mode)
                }
            }
        }
    }

    func testBatchNormLinearAndResidualUnitSkipTheirParameterGradients() {
        for mode in [Mode.training, .evaluation] {
            assertInputOnlyBackwardMatches(
                BatchNorm2D("bn", channels: 3, relu: true), input: Shape(n: 3, c: 3, h: 4, w: 4), mode: mode)
            assertInputOnlyBackwardMatches(
                Linear("fc", inFeatures: 12, outFeatures: 5), input: Shape(n: 4, c: 12), mode: mode)
            let main = Sequential(
                "unit.main",
                [
                    Conv2D("unit.a", inChannels: 3, outChannels: 4, kernel: 3, stride: 2, padding: 1, bias: false),
                    BatchNorm2D("unit.bn", channels: 4, relu: true),
                    Conv2D("unit.b", inChannels: 4, outChannels: 4, kernel: 3, padding: 1),
                ])
            let shortcut = Sequential(
                "unit.short", [Conv2D("unit.p", inChannels: 3, outChannels: 4, kernel: 1, stride: 2)])
            assertInputOnlyBackwardMatches(
                ResidualUnit("unit", main: main, shortcut: shortcut, activation: true),
                input: Shape(n: 2, c: 3, h: 6, w: 6), mode: mode)
        }
    }
}
