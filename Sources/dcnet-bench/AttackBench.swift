import BLAS
import DCNetData
import DCNetEvaluation
import DCNetLayers
import DCNetModels
import DCNetTensor
import Foundation

/// `scripts/bench attack`: the gradient pass every attack step makes (evaluation-mode forward, loss,
/// backward to the input) on the networks of the standard suite's robustness study (half-width
/// CNN-9: baseline, TanhConv and BallConv), per image on one core (batch 100, the attack default;
/// 1 OpenBLAS thread, as each of the suite's 2 ranks runs). It times the pass with the parameter
/// gradients (what the attacks computed before they were skipped) and without (what they compute
/// now), checks that both give the same input gradient, and projects the standard suite's attacks
/// (FGSM + BIM-10 + PGD-20 at 4 ε: 124 passes per image, 3 seeds of each network) to all 10,000
/// test images on 2 ranks.
enum AttackBench {
    static func run() throws {
        let reps = Int(ProcessInfo.processInfo.environment["BENCH_REPS"] ?? "") ?? 5
        let batch = 100, inner = 3
        let passesPerImage = 4 * (1 + 10 + 20), seeds = 3, images = 10_000, ranks = 2
        BLAS.threadCount = 1
        let networks: [(name: String, key: String, kind: ConvolutionKind)] = [
            ("baseline", "baseline", .baseline),
            (
                "tanh + cos", "tanh",
                .decoupled(DecoupledOperator(magnitude: .tanh, angular: .cosine, radius: .learnable(decay: 0.9)))
            ),
            (
                "ball + cos", "ball",
                .decoupled(DecoupledOperator(magnitude: .ball, angular: .cosine, radius: .learnable(decay: 0.9)))
            ),
        ]
        print("attack gradient pass: half-width CNN-9, batch \(batch), 1 OpenBLAS thread,")
        print("ms per image, median of \(reps) runs of \(inner) passes")
        print("")
        print(
            ConvBench.pad("network", 14) + ConvBench.pad("with param grads", 18) + ConvBench.pad("input only", 12)
                + ConvBench.pad("speed-up", 10) + "max |dx difference|")
        var speedups: [(key: String, value: Double)] = [], suiteSeconds = (before: 0.0, after: 0.0)
        for (name, key, kind) in networks {
            let network = ModelConfig(architecture: .cnn9, widthMultiplier: 0.5, convolution: kind)
                .makeNetwork(batch: batch)
            var rng = Xoshiro256StarStar(seed: 3)
            network.initializeParameters(using: &rng)
            let input = network.arena.tensor(network.inputShape)
            for i in 0..<input.count { input.data[i] = rng.nextFloat(in: -1..<1) }
            let labels = UnsafeMutablePointer<Int32>.allocate(capacity: batch)
            defer { labels.deallocate() }
            for i in 0..<batch { labels[i] = Int32(i % 10) }
            // One training-mode pass so BatchNorm and the decoupled layers have running statistics.
            _ = network.forward(input, mode: .training)
            func pass(parameterGradients: Bool) -> Tensor {
                let logits = network.forward(input, mode: .evaluation)
                _ = network.loss.forward(logits: logits, labels: labels)
                return network.backward(
                    network.loss.backward(), inputGradient: true, parameterGradients: parameterGradients,
                    layerDone: { _ in })!
            }
            let withParameters = pass(parameterGradients: true).toArray()
            let inputOnly = inputGradient(network: network, input: input, labels: labels).gradient.toArray()
            let difference = zip(withParameters, inputOnly).map { abs($0 - $1) }.max() ?? 0
            var before: [Double] = [], after: [Double] = []
            for _ in 0..<reps {
                before.append(ConvBench.time { for _ in 0..<inner { _ = pass(parameterGradients: true) } })
                after.append(
                    ConvBench.time {
                        for _ in 0..<inner { _ = inputGradient(network: network, input: input, labels: labels) }
                    })
            }
            let perImage = 1e3 / Double(inner * batch)
            let b = ConvBench.median(before) * perImage, a = ConvBench.median(after) * perImage
            speedups.append((key, b / a))
            let imagePasses = Double(seeds * images * passesPerImage) / Double(ranks)
            suiteSeconds.before += imagePasses * b / 1e3
            suiteSeconds.after += imagePasses * a / 1e3
            print(
                ConvBench.pad(name, 14) + ConvBench.pad(String(format: "%.3f", b), 18)
                    + ConvBench.pad(String(format: "%.3f", a), 12) + ConvBench.pad(String(format: "%.2f×", b / a), 10)
                    + String(format: "%.1e", Double(difference)))
        }
        print("")
        print(
            "projection: \(seeds) seeds × \(networks.count) networks, \(images) images, \(passesPerImage) gradient passes per image,"
                + " \(ranks) ranks (clean and adversarial evaluation passes not counted)")
        for (key, value) in speedups { print(String(format: "attack-pass-speedup-\(key): %.2f", value)) }
        print(String(format: "attack-suite-10k-hours-with-parameter-gradients: %.2f", suiteSeconds.before / 3600))
        print(String(format: "attack-suite-10k-hours: %.2f", suiteSeconds.after / 3600))
    }
}
