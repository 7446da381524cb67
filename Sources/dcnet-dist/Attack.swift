import ArgumentParser
import DCNetData
import DCNetEvaluation
import DCNetLayers
import DCNetMetrics
import DCNetTraining
import Foundation
import MPI

extension AttackMethod: ExpressibleByArgument {}
extension EpsilonUnits: ExpressibleByArgument {}

struct Attack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy under L∞ adversarial attacks (FGSM, BIM, PGD), white-box or transferred (black-box).",
        discussion: """
            Attacks the test set in evaluation mode, distributed over the ranks (each rank its contiguous \
            evaluation shard; counts are all-reduced). Adversarial images stay in the valid pixel range \
            [0, 255] and within epsilon of the clean image (L∞); they are not rounded to whole pixel levels.

            Units: --epsilon 8 means 8 pixel levels out of 255, i.e. 8/128 in model units for the \
            authors' scaling and 8/(255·std_c) per channel for meanstd. With --epsilon-units model the \
            value is in model (scaled-input) units for every channel. --step-size uses the same units.

            FGSM: x + eps·sign(∇ₓL), one step. BIM: --steps steps of --step-size (default eps/steps), each \
            projected onto the eps-ball and the pixel range. PGD: BIM from a uniform random start in the \
            eps-ball (seeded by --seed and the image index; default step 2.5·eps/steps).

            Black-box: with --source-checkpoint the attack is crafted on the source model and evaluated on \
            --checkpoint (transfer). The JSON line appended to --output is read by `dcnet-dist report`.
            """)

    @Option(help: "Checkpoint of the attacked model (.safetensors, or a checkpoint directory: its newest checkpoint).")
    var checkpoint: String
    @Option(help: "Directory with the CIFAR binary files.") var data: String
    @Option(help: "fgsm, bim or pgd.") var method: AttackMethod = .fgsm
    @Option(help: "L∞ budget; a comma-separated list runs several (e.g. 1,2,4,8).") var epsilon: String
    @Option(help: "pixels (levels of 0…255) or model (scaled-input units).") var epsilonUnits: EpsilonUnits = .pixels
    @Option(help: "Iterations of BIM/PGD (FGSM: always 1).") var steps: Int = 10
    @Option(help: "Step size of BIM/PGD in --epsilon-units (default: eps/steps for BIM, 2.5·eps/steps for PGD).")
    var stepSize: Double?
    @Option(
        help: "Craft on this checkpoint (file or directory) and evaluate on --checkpoint: a black-box transfer attack.")
    var sourceCheckpoint: String?
    @Option(help: "Attack only the first N test images.") var limit: Int?
    @Option(help: "Append one JSON line per epsilon to this file (rank 0).") var output: String?
    @Option(help: "Run name recorded as the target (default: derived from the checkpoint path).") var name: String?
    @Option(help: "Run name recorded as the source (default: derived from the source checkpoint path).") var sourceName:
        String?
    @Option(help: "Seed of the PGD random start.") var seed: UInt64 = 0
    @Option(help: "Images per rank and pass.") var batchSize: Int = 100
    @Option(help: "OpenBLAS threads per rank.") var threads: Int?
    @OptionGroup var engine: EngineOptions

    func epsilons() throws -> [Double] {
        try epsilon.split(separator: ",").map {
            guard let v = Double($0.trimmingCharacters(in: .whitespaces)), v >= 0, v.isFinite else {
                throw ValidationError("--epsilon: '\($0)' is not a non-negative number")
            }
            return v
        }
    }

    func validate() throws {
        if try epsilons().isEmpty { throw ValidationError("--epsilon needs at least one value") }
        if steps <= 0 { throw ValidationError("--steps must be positive (got \(steps))") }
        if let a = stepSize, !(a > 0) { throw ValidationError("--step-size must be positive (got \(a))") }
        if let l = limit, l <= 0 { throw ValidationError("--limit must be positive (got \(l))") }
        if batchSize <= 0 { throw ValidationError("--batch-size must be positive (got \(batchSize))") }
        if let t = threads, t <= 0 { throw ValidationError("--threads must be positive (got \(t))") }
        for (flag, path) in [("--checkpoint", checkpoint), ("--source-checkpoint", sourceCheckpoint)] {
            if let path, !FileManager.default.fileExists(atPath: path) {
                throw ValidationError("\(flag) \(path): no such file")
            }
        }
        if !FileManager.default.fileExists(atPath: data) { throw ValidationError("--data \(data): no such directory") }
    }

    func run() throws {
        let epsilonValues = try epsilons()
        runJob { world in
            let console = Console(rank: world.rank)
            let target = try CheckpointedModel(
                path: checkpoint, batch: batchSize, threads: threads, algorithm: engine.convolutionAlgorithm,
                communicator: world)
            let source = try sourceCheckpoint.map {
                try CheckpointedModel(
                    path: $0, batch: batchSize, threads: threads, algorithm: engine.convolutionAlgorithm,
                    communicator: world)
            }
            var test = try target.loadTestSet(directory: data)
            if let limit { test = test.prefix(min(limit, test.count)) }
            let scaling = (source ?? target).config.scaling.scaling
            let settings = epsilonValues.map {
                AttackSettings(
                    method: method, epsilon: $0, units: epsilonUnits, steps: steps, stepSize: stepSize,
                    scaling: scaling, seed: seed)
            }
            let evaluation = AdversarialEvaluation(
                target: target.network, targetScaling: target.config.scaling.scaling,
                source: source.map { ($0.network, $0.config.scaling.scaling) }, communicator: world)
            let start = Date()
            let results = try evaluation.run(dataset: test, settings: settings)
            let targetName = name ?? runName(checkpoint)
            let sourceRun = source == nil ? targetName : (sourceName ?? runName(sourceCheckpoint!))
            let what = source == nil ? "white-box" : "black-box from \(sourceRun)"
            console.print(
                "\(targetName): \(method.rawValue.uppercased()) \(what), \(results.first?.images ?? 0) test images, "
                    + String(
                        format: "clean accuracy %.2f%% (%d rank(s), %.0f s)", 100 * (results.first?.cleanAccuracy ?? 0),
                        world.size, Date().timeIntervalSince(start)))
            var records: [MetricsRecord] = []
            for r in results {
                let s = r.settings
                console.print(
                    String(
                        format:
                            "  eps %5.2f px (%.4f model units)  steps %2d  step %.3f px  accuracy %6.2f%%  max |δ| "
                            + "%.3f px  pixels in [%.2f, %.2f]",
                        s.epsilonPixels, s.epsilon[0], s.steps, s.stepSizePixels, 100 * r.adversarialAccuracy,
                        r.maxPerturbationPixels, r.minPixel, r.maxPixel))
                records.append(.attack(r.record(source: sourceRun, target: targetName, transfer: source != nil)))
            }
            if let output {
                try world.agree(console: console, what: "appending to \(output)") {
                    if world.rank == 0 { try MetricsWriter.append(records, to: output) }
                }
            }
            return 0
        }
    }
}

/// The run a checkpoint belongs to: `<suite>/<run>/checkpoints/ckpt-….safetensors` → `<run>`.
func runName(_ path: String) -> String {
    var url = URL(fileURLWithPath: path).standardizedFileURL
    if url.pathExtension == "safetensors" { url.deleteLastPathComponent() }
    if url.lastPathComponent == "checkpoints" { url.deleteLastPathComponent() }
    return url.lastPathComponent
}
