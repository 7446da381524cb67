import DCNetRandom
import DCNetTensor
import XCTest

@testable import DCNetLayers

/// Winograd F(4×4, 3×3): the transforms' adjoints, and whole convolutions (forward, input and filter
/// gradients) against im2col + GEMM over image sizes that are and are not multiples of the tile, and
/// batches that span several chunks.
final class WinogradTests: XCTestCase {
    private func random(_ count: Int, _ rng: inout SplitMix64) -> [Float] { (0..<count).map { _ in rng.normal() } }
    private func dot(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    /// ||a − b|| / ||b||
    private func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        let diff = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        return diff.squareRoot() / max(dot(b, b).squareRoot(), 1e-12)
    }

    func testTilingAppliesToThreeByThreeSameConvolutionsOnly() {
        XCTAssertNotNil(
            WinogradTiling(ConvGeometry(channels: 4, height: 7, width: 9, kernel: 3, stride: 1, padding: 1)))
        XCTAssertNil(WinogradTiling(ConvGeometry(channels: 4, height: 8, width: 8, kernel: 3, stride: 2, padding: 1)))
        XCTAssertNil(WinogradTiling(ConvGeometry(channels: 4, height: 8, width: 8, kernel: 3, stride: 1, padding: 0)))
        XCTAssertNil(WinogradTiling(ConvGeometry(channels: 4, height: 8, width: 8, kernel: 5, stride: 1, padding: 2)))
        let t = WinogradTiling(ConvGeometry(channels: 1, height: 7, width: 9, kernel: 3, stride: 1, padding: 1))!
        XCTAssertEqual(t.tileRows, 2); XCTAssertEqual(t.tileColumns, 3)
    }

    /// <T x, y> = <x, Tᵀ y> for the input, output and filter transforms: each backward transform is
    /// the exact adjoint of its forward one.
    func testTransformsAndTheirAdjointsAgree() {
        var rng = SplitMix64(seed: 11)
        let work = UnsafeMutablePointer<Float>.allocate(capacity: WinogradTiling.workspaceCount)
        defer { work.deallocate() }
        for (h, w, c, n) in [(8, 8, 2, 3), (5, 7, 3, 2), (1, 1, 1, 1), (32, 32, 1, 2), (6, 10, 2, 1)] {
            let tiling = WinogradTiling(
                ConvGeometry(channels: c, height: h, width: w, kernel: 3, stride: 1, padding: 1))!
            let T = n * tiling.tilesPerImage, vCount = 36 * c * T
            let padded = tiling.paddedHeight * tiling.paddedWidth, aligned = tiling.alignedHeight * tiling.alignedWidth
            var inputOffsets = [Int](repeating: 0, count: T), outputOffsets = [Int](repeating: 0, count: T)
            tiling.tileOffsets(
                images: n, channels: c, planeSize: padded, rowStride: tiling.paddedWidth, into: &inputOffsets)
            tiling.tileOffsets(
                images: n, channels: c, planeSize: aligned, rowStride: tiling.alignedWidth, into: &outputOffsets)

            let x = random(n * c * padded, &rng)
            var v = random(vCount, &rng)
            var tx = [Float](repeating: .nan, count: vCount), tv = [Float](repeating: 0, count: x.count)
            Winograd.transformInput(
                x, channels: c, planeStride: padded, rowStride: tiling.paddedWidth, tiles: T,
                offsets: inputOffsets, into: &tx, workspace: work)
            Winograd.transformInputAdjoint(
                &v, channels: c, planeStride: padded, rowStride: tiling.paddedWidth, tiles: T,
                offsets: inputOffsets, into: &tv, workspace: work)
            XCTAssertFalse(tx.contains { $0.isNaN })
            XCTAssertEqual(dot(tx, v), dot(x, tv), accuracy: 1e-4 * max(1, abs(dot(tx, v))), "input \(tiling)")
            // Clearing zeroes dV as it is read and changes nothing else.
            var cleared = v, tvCleared = [Float](repeating: 0, count: x.count)
            Winograd.transformInputAdjoint(
                &cleared, channels: c, planeStride: padded, rowStride: tiling.paddedWidth,
                tiles: T, offsets: inputOffsets, into: &tvCleared, workspace: work, clearing: true)
            XCTAssertEqual(tvCleared, tv, "input adjoint with clearing \(tiling)")
            XCTAssertTrue(cleared.allSatisfy { $0 == 0 }, "dV cleared \(tiling)")

            var m = random(vCount, &rng)
            let y = random(n * c * aligned, &rng)
            var tm = [Float](repeating: .nan, count: y.count), ty = [Float](repeating: .nan, count: vCount)
            Winograd.transformOutput(
                &m, channels: c, planeStride: aligned, rowStride: tiling.alignedWidth, tiles: T,
                offsets: outputOffsets, into: &tm, workspace: work)
            Winograd.transformOutputAdjoint(
                y, channels: c, planeStride: aligned, rowStride: tiling.alignedWidth, tiles: T,
                offsets: outputOffsets, into: &ty, workspace: work)
            XCTAssertFalse(tm.contains { $0.isNaN } || ty.contains { $0.isNaN }, "every aligned pixel is written")
            XCTAssertEqual(dot(tm, y), dot(m, ty), accuracy: 1e-4 * max(1, abs(dot(tm, y))), "output \(tiling)")
            var mCleared = m, tmCleared = [Float](repeating: .nan, count: y.count)
            Winograd.transformOutput(
                &mCleared, channels: c, planeStride: aligned, rowStride: tiling.alignedWidth,
                tiles: T, offsets: outputOffsets, into: &tmCleared, workspace: work, clearing: true)
            XCTAssertEqual(tmCleared, tm, "output transform with clearing \(tiling)")
            XCTAssertTrue(mCleared.allSatisfy { $0 == 0 }, "M cleared \(tiling)")
        }
        let (k, c) = (3, 2)
        let g = random(k * c * 9, &rng), u = random(36 * k * c, &rng)
        var tg = [Float](repeating: .nan, count: u.count), tu = [Float](repeating: .nan, count: g.count)
        Winograd.transformFilters(g, outChannels: k, inChannels: c, into: &tg)
        Winograd.filterGradient(u, outChannels: k, inChannels: c, into: &tu)
        XCTAssertEqual(dot(tg, u), dot(g, tu), accuracy: 1e-4 * max(1, abs(dot(tg, u))))
    }

    /// Forward, dL/dx and dL/dW of a Winograd convolution match im2col + GEMM, for batches of one and
    /// several chunks (and a last chunk that is partly filled), and for a batch smaller than built.
    func testWinogradConvolutionMatchesIm2ColGEMM() {
        let cases: [(n: Int, c: Int, k: Int, h: Int, w: Int, used: Int)] = [
            (2, 3, 4, 8, 8, 2), (3, 2, 5, 5, 7, 3), (2, 4, 3, 1, 1, 2), (11, 3, 2, 32, 32, 11),
            (40, 2, 3, 16, 16, 37), (3, 16, 8, 6, 6, 1), (2, 2, 2, 2, 3, 2),
        ]
        for t in cases {
            var rng = SplitMix64(seed: UInt64(t.n * 31 + t.h))
            let shape = Shape(n: t.n, c: t.c, h: t.h, w: t.w)
            let layers = [ConvolutionAlgorithm.winograd, .gemm].map {
                Conv2D("conv", inChannels: t.c, outChannels: t.k, kernel: 3, padding: 1, bias: true, algorithm: $0)
            }
            let arena = Arena()
            let outShape = layers.map { $0.build(input: shape, arena: arena) }[0]
            XCTAssertEqual(outShape, Shape(n: t.n, c: t.k, h: t.h, w: t.w))
            let weights = random(t.k * t.c * 9, &rng), bias = random(t.k, &rng)
            for layer in layers {
                layer.weight.bind(value: arena.floats(weights.count), gradient: arena.floats(weights.count))
                layer.bias!.bind(value: arena.floats(t.k), gradient: arena.floats(t.k))
                layer.weight.value.update(from: weights, count: weights.count)
                layer.bias!.value.update(from: bias, count: t.k)
            }
            let x = arena.tensor(shape).prefix(samples: t.used)
            x.data.update(from: random(x.count, &rng), count: x.count)
            let dy = arena.tensor(outShape).prefix(samples: t.used)
            dy.data.update(from: random(dy.count, &rng), count: dy.count)
            let label = "\(t)"

            let ys = layers.map { $0.forward(x, mode: .training).toArray() }
            XCTAssertLessThan(relativeError(ys[0], ys[1]), 1e-5, "forward \(label)")
            let dxs = layers.map { $0.backward(dy, needInputGradient: true)!.toArray() }
            XCTAssertLessThan(relativeError(dxs[0], dxs[1]), 1e-5, "input gradient \(label)")
            let dws = layers.map { Array($0.weight.gradientBuffer) }
            XCTAssertLessThan(relativeError(dws[0], dws[1]), 1e-5, "filter gradient \(label)")
            let dbs = layers.map { Array($0.bias!.gradientBuffer) }
            XCTAssertLessThan(relativeError(dbs[0], dbs[1]), 1e-5, "bias gradient \(label)")
            XCTAssertEqual(layers[0].engineAlgorithm, .winograd)
            XCTAssertEqual(layers[1].engineAlgorithm, .gemm)
        }
    }

    /// The filter gradient is accumulated over chunks: after a backward without the input gradient
    /// (the first layer's case) it is still the whole batch's.
    func testFilterGradientWithoutInputGradientCoversTheBatch() {
        var rng = SplitMix64(seed: 5)
        let shape = Shape(n: 19, c: 2, h: 16, w: 16)
        let layers = [ConvolutionAlgorithm.winograd, .gemm].map {
            Conv2D("conv", inChannels: 2, outChannels: 3, kernel: 3, padding: 1, bias: false, algorithm: $0)
        }
        let arena = Arena()
        let outShape = layers.map { $0.build(input: shape, arena: arena) }[0]
        let weights = random(3 * 2 * 9, &rng)
        for layer in layers {
            layer.weight.bind(value: arena.floats(weights.count), gradient: arena.floats(weights.count))
            layer.weight.value.update(from: weights, count: weights.count)
        }
        let x = arena.tensor(shape), dy = arena.tensor(outShape)
        x.data.update(from: random(x.count, &rng), count: x.count);
        dy.data.update(from: random(dy.count, &rng), count: dy.count)
        for layer in layers {
            _ = layer.forward(x, mode: .training)
            XCTAssertNil(layer.backward(dy, needInputGradient: false))
        }
        XCTAssertLessThan(
            relativeError(Array(layers[0].weight.gradientBuffer), Array(layers[1].weight.gradientBuffer)), 1e-5)
    }

    /// Finite differences through both algorithms, for the baseline and a decoupled convolution.
    func testGradientsOfBothAlgorithmsMatchFiniteDifferences() {
        let op = DecoupledOperator(magnitude: .tanh, angular: .cosine)
        for algorithm in ConvolutionAlgorithm.allCases {
            assertGradientsMatch(
                Conv2D(
                    "conv-\(algorithm)", inChannels: 3, outChannels: 4, kernel: 3, padding: 1,
                    algorithm: algorithm),
                input: Shape(n: 2, c: 3, h: 6, w: 5))
            assertGradientsMatch(
                DecoupledConv2D(
                    "dconv-\(algorithm)", inChannels: 3, outChannels: 4, kernel: 3,
                    padding: 1, operator: op, algorithm: algorithm),
                input: Shape(n: 2, c: 3, h: 6, w: 5))
        }
    }
}
