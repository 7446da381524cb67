import DCNetRandom
import DCNetTensor
import XCTest

@testable import DCNetLayers

extension SplitMix64 {
    /// A Float test input from DCNetRandom's normal: a seed gives the same inputs with any Swift version.
    mutating func normal() -> Float { Float(nextNormal()) }
}

/// Outcome of comparing backward against central finite differences of L = Σ dy·forward(x).
struct GradientReport: CustomStringConvertible {
    /// Worst relative error ||numeric − analytic|| / max(||numeric||, ||analytic||) over the tensors.
    var worst: Double = 0
    var lines: [String] = []
    var description: String { lines.joined(separator: "\n") }
}

/// Binds a layer's parameters to fresh buffers with random values, like `Network` does.
func bindRandomParameters(_ layer: Layer, arena: Arena, rng: inout SplitMix64, scale: Float = 0.5) {
    for p in layer.parameters {
        p.bind(value: arena.floats(p.count), gradient: arena.floats(p.count))
        for i in 0..<p.count {
            switch p.role {
            case .radius: p.value[i] = 1 + min(max(0.1 * rng.normal(), -0.1), 0.1)
            case .batchNormScale: p.value[i] = 1 + 0.3 * rng.normal()
            case .angularSharpness: p.value[i] = 0.25 + 0.05 * rng.normal()
            default: p.value[i] = scale * rng.normal()
            }
        }
    }
}

/// Central differences in Float with step `h`; up to `samplesPerTensor` coordinates per tensor.
/// With `reference` (a twin of `layer`: same parameters in the same order, given the same values),
/// the differences are of the reference's forward and the analytic gradients `layer`'s: bf16
/// layers are checked against the fp32 function, since differences of a forward whose GEMM
/// operands are rounded to bf16 would mostly measure the rounding.
func checkGradients(
    _ layer: Layer, input shape: Shape, mode: Mode = .training, seed: UInt64 = 1,
    h: Float = 1e-2, samplesPerTensor: Int = 24, inputScale: Float = 1,
    prepare: ((Tensor) -> Void)? = nil,
    warmUp: Int = 0, reference: Layer? = nil
) -> GradientReport {
    var rng = SplitMix64(seed: seed)
    let arena = Arena()
    let outShape = layer.build(input: shape, arena: arena)
    if let reference {
        _ = reference.build(input: shape, arena: arena)
        var twin = rng
        bindRandomParameters(reference, arena: arena, rng: &twin)
    }
    bindRandomParameters(layer, arena: arena, rng: &rng)
    let differenced = reference ?? layer
    let x = arena.tensor(shape)
    for i in 0..<x.count { x.data[i] = inputScale * rng.normal() }
    prepare?(x)
    let dy = arena.tensor(outShape)
    for i in 0..<dy.count { dy.data[i] = rng.normal() }
    // Running statistics settle before evaluation-mode checks.
    for _ in 0..<warmUp {
        _ = layer.forward(x, mode: .training)
        if let reference { _ = reference.forward(x, mode: .training) }
    }

    func loss() -> Double {
        let y = differenced.forward(x, mode: mode)
        var s = 0.0
        for i in 0..<y.count { s += Double(y.data[i]) * Double(dy.data[i]) }
        return s
    }
    _ = layer.forward(x, mode: mode)
    let dxTensor = layer.backward(dy, needInputGradient: true)!
    let dx = dxTensor.toArray()
    let parameterGradients = layer.parameters.map { Array($0.gradientBuffer) }

    var report = GradientReport()
    func compare(_ name: String, values: UnsafeMutablePointer<Float>, count: Int, analytic: [Float], h: Float) {
        // A partial Fisher–Yates with DCNetRandom's bounded draw, not `shuffle(using:)`, whose
        // algorithm the standard library does not fix: the sampled coordinates stay those of the seed.
        var indices = Array(0..<count)
        if count > samplesPerTensor {
            for i in 0..<samplesPerTensor { indices.swapAt(i, i + rng.nextInt(below: count - i)) }
            indices = Array(indices.prefix(samplesPerTensor))
        }
        var diff = 0.0, normN = 0.0, normA = 0.0
        for i in indices {
            let saved = values[i]
            values[i] = saved + h; let lp = loss()
            values[i] = saved - h; let lm = loss()
            values[i] = saved
            let numeric = (lp - lm) / Double(2 * h)
            let a = Double(analytic[i])
            diff += (numeric - a) * (numeric - a); normN += numeric * numeric; normA += a * a
        }
        let rel = diff.squareRoot() / max(normN.squareRoot(), normA.squareRoot(), 1e-6)
        report.worst = max(report.worst, rel)
        report.lines.append(
            "\(name): relative error \(rel) (|numeric| \(normN.squareRoot()), |analytic| \(normA.squareRoot()))")
    }
    compare("input", values: x.data, count: x.count, analytic: dx, h: h)
    for (p, g) in zip(differenced.parameters, parameterGradients) {
        // rho moves every patch of a channel at once, so BallConv's and SegConv's kink at
        // ||x|| = rho is crossed by some patch unless the step is small.
        compare(p.name, values: p.value, count: p.count, analytic: g, h: p.role == .radius ? h / 10 : h)
    }
    return report
}

func assertGradientsMatch(
    _ layer: Layer, input: Shape, mode: Mode = .training, tolerance: Double = 2e-2,
    seed: UInt64 = 1, inputScale: Float = 1, warmUp: Int = 0,
    prepare: ((Tensor) -> Void)? = nil, reference: Layer? = nil,
    file: StaticString = #filePath, line: UInt = #line
) {
    let r = checkGradients(
        layer, input: input, mode: mode, seed: seed, inputScale: inputScale,
        prepare: prepare, warmUp: warmUp, reference: reference)
    XCTAssertLessThan(r.worst, tolerance, "\(layer.name)\n\(r)", file: file, line: line)
}
