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
        abstract: "Accuracy under L∞ adversarial attacks (FGSM, BIM, PGD), white-box and transferred (black-box).",
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

            White-box: the attack is crafted on --checkpoint and evaluated on it; one JSON line per epsilon \
            (mode white-box, source = target = --name) is appended to --output, read by `dcnet-dist report`.

            Transfer to several models at once: with --transfer-to (repeatable) the adversarial images \
            crafted on --checkpoint are evaluated on it (white-box, to --output) and on every --transfer-to \
            model (black-box: source = --name, target = its --transfer-name, appended to its \
            --transfer-output). The images are crafted once and shared, so BIM/PGD's gradient passes are paid \
            once for all targets; the numbers are those of one white-box job plus one --source-checkpoint \
            job per target. --transfer-name and --transfer-output are matched to --transfer-to by position: \
            give each once per --transfer-to or not at all. --transfer-output is required when --output is \
            given, so that each target's records go to that target's run file, not the crafting run's. \
            Each model may use its own input scaling (images are carried over in pixel values). All models \
            are held in memory at once, each built for --batch-size.

            Single black-box pair: with --source-checkpoint the attack is crafted on the source model and \
            evaluated only on --checkpoint, whose --output gets the black-box records (source = \
            --source-name, target = --name). It cannot be combined with --transfer-to.
            """)

    @Option(
        help: """
            Checkpoint of the attacked model (.safetensors, or a checkpoint directory: its newest checkpoint); \
            with --transfer-to, the model the attacks are crafted on.
            """)
    var checkpoint: String
    @Option(help: "fgsm, bim or pgd.") var method: AttackMethod = .fgsm
    @Option(help: "L∞ budget; a comma-separated list runs several (e.g. 1,2,4,8).") var epsilon: String
    @Option(help: "pixels (levels of 0…255) or model (scaled-input units).") var epsilonUnits: EpsilonUnits = .pixels
    @Option(help: "Iterations of BIM/PGD (FGSM: always 1).") var steps: Int = 10
    @Option(help: "Step size of BIM/PGD in --epsilon-units (default: eps/steps for BIM, 2.5·eps/steps for PGD).")
    var stepSize: Double?
    @Option(
        help: "Craft on this checkpoint (file or directory) and evaluate on --checkpoint: a black-box transfer attack.")
    var sourceCheckpoint: String?
    @Option(
        help: ArgumentHelp(
            """
            Also evaluate the images crafted on --checkpoint on this model (checkpoint file or directory): \
            black-box transfer. Repeatable; the images are crafted once for all targets.
            """, valueName: "checkpoint"))
    var transferTo: [String] = []
    @Option(
        help: ArgumentHelp(
            """
            Append the black-box records of the --transfer-to in the same position to this file (rank 0); \
            once per --transfer-to. Required with --output.
            """, valueName: "file"))
    var transferOutput: [String] = []
    @Option(
        help: ArgumentHelp(
            """
            Run name recorded as the target of the --transfer-to in the same position (default: derived \
            from its path); once per --transfer-to.
            """, valueName: "name"))
    var transferName: [String] = []
    @Option(help: "Attack only the first N test images.") var limit: Int?
    @Option(
        help: """
            Append one JSON line per epsilon to this file (rank 0): the records of --checkpoint (white-box, \
            or black-box with --source-checkpoint).
            """)
    var output: String?
    @Option(
        help: """
            Run name of --checkpoint, recorded as the target (and as the source of white-box and \
            --transfer-to records; default: derived from the checkpoint path).
            """)
    var name: String?
    @Option(help: "Run name recorded as the source (default: derived from the source checkpoint path).") var sourceName:
        String?
    @Option(help: "Seed of the PGD random start.") var seed: UInt64 = 0
    @Option(help: "Images per rank and pass.") var batchSize: Int = 100
    @OptionGroup var engine: EngineOptions
    @OptionGroup var job: JobOptions

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
        try validateTransfer()
        let checkpoints: [(String, String?)] =
            [("--checkpoint", checkpoint), ("--source-checkpoint", sourceCheckpoint)]
            + transferTo.map { ("--transfer-to", $0) }
        for (flag, path) in checkpoints {
            if let path, !FileManager.default.fileExists(atPath: path) {
                throw ValidationError("\(flag) \(path): no such file or directory")
            }
        }
    }

    /// --transfer-name and --transfer-output match --transfer-to by position; --transfer-to excludes
    /// the single-pair black-box mode and, with --output, needs its own output files.
    func validateTransfer() throws {
        for (flag, values) in [("--transfer-output", transferOutput), ("--transfer-name", transferName)]
        where !values.isEmpty && values.count != transferTo.count {
            throw ValidationError(
                "\(flag) is given \(values.count) time(s) but --transfer-to \(transferTo.count) time(s): give "
                    + "\(flag) once per --transfer-to (matched by position) or not at all")
        }
        guard !transferTo.isEmpty else { return }
        if sourceCheckpoint != nil || sourceName != nil {
            throw ValidationError(
                "--transfer-to cannot be combined with --source-checkpoint or --source-name: with --transfer-to, "
                    + "--checkpoint is the model the attacks are crafted on (named by --name), evaluated white-box "
                    + "and transferred to every --transfer-to model")
        }
        if output != nil && transferOutput.isEmpty {
            throw ValidationError(
                "--transfer-to with --output needs --transfer-output (once per --transfer-to): --output gets the "
                    + "white-box records of --checkpoint, and each target's black-box records belong in that "
                    + "target's run file, not in --output")
        }
    }

    func run() throws {
        let epsilonValues = try epsilons()
        runJob(collectiveTimeout: job.collectiveTimeout) { world in
            let console = Console(rank: world.rank)
            func load(_ path: String) throws -> CheckpointedModel {
                try CheckpointedModel(
                    path: path, batch: batchSize, threads: job.threads, algorithm: engine.convolutionAlgorithm,
                    precision: engine.precision,
                    communicator: world)
            }
            let attacked = try load(checkpoint)
            let source = try sourceCheckpoint.map(load)
            let transfers = try transferTo.map(load)
            // The crafting model, and the models evaluated black-box (with their names and record files).
            let crafter = source ?? attacked
            let craftName = source == nil ? (name ?? runName(checkpoint)) : (sourceName ?? runName(sourceCheckpoint!))
            let targets: [(model: CheckpointedModel, name: String, output: String?)] =
                source == nil
                ? transfers.indices.map { m in
                    (
                        transfers[m], transferName.isEmpty ? runName(transferTo[m]) : transferName[m],
                        transferOutput.isEmpty ? nil : transferOutput[m]
                    )
                }
                : [(attacked, name ?? runName(checkpoint), output)]
            for t in targets {
                let a = crafter.config, b = t.model.config
                if a.variant != b.variant || a.model.classes != b.model.classes {
                    throw JobError(
                        rank: 0,
                        "\(t.model.path) (\(b.variant.rawValue), \(b.model.classes) classes) and \(crafter.path) "
                            + "(\(a.variant.rawValue), \(a.model.classes) classes): not the same data set")
                }
            }
            var test = try crafter.loadTestSet(directory: job.data)
            if let limit { test = test.prefix(min(limit, test.count)) }
            let settings = epsilonValues.map {
                AttackSettings(
                    method: method, epsilon: $0, units: epsilonUnits, steps: steps, stepSize: stepSize,
                    scaling: crafter.config.scaling.scaling, seed: seed)
            }
            let evaluation = AdversarialEvaluation(
                crafting: crafter.network, scaling: crafter.config.scaling.scaling, whiteBox: source == nil,
                transferTargets: targets.map { ($0.model.network, $0.model.config.scaling.scaling) },
                communicator: world)
            let start = Date()
            let outcomes = try evaluation.run(dataset: test, settings: settings)
            console.print(
                "\(method.rawValue.uppercased()) crafted on \(craftName), \(test.count) test images"
                    + String(format: " (%d rank(s), %.0f s)", world.size, Date().timeIntervalSince(start)))
            var whiteBoxRecords: [MetricsRecord] = []
            var targetRecords = [[MetricsRecord]](repeating: [], count: targets.count)
            for o in outcomes {
                if let r = o.whiteBox {
                    console.print(line(r, model: craftName, mode: "white-box"))
                    whiteBoxRecords.append(.attack(r.record(source: craftName, target: craftName, transfer: false)))
                }
                for (m, r) in o.transfers.enumerated() {
                    console.print(line(r, model: targets[m].name, mode: "black-box from \(craftName)"))
                    targetRecords[m].append(
                        .attack(r.record(source: craftName, target: targets[m].name, transfer: true)))
                }
            }
            // Every rank runs the same agreements in the same order; rank 0 writes.
            var files: [(path: String, records: [MetricsRecord])] = []
            if source == nil, let output { files.append((output, whiteBoxRecords)) }
            for (m, t) in targets.enumerated() { if let path = t.output { files.append((path, targetRecords[m])) } }
            for file in files {
                try world.agree("appending to \(file.path)") {
                    if world.rank == 0 { try MetricsWriter.append(file.records, to: file.path) }
                }
            }
            return 0
        }
    }

    /// One console line: a setting and the accuracy of one model under it.
    func line(_ r: AttackResult, model: String, mode: String) -> String {
        let s = r.settings
        return String(
            format: "  eps %5.2f px (%.4f model units)  steps %2d  step %.3f px  ", s.epsilonPixels, s.epsilon[0],
            s.steps, s.stepSizePixels)
            + "\(model) \(mode): "
            + String(
                format: "accuracy %6.2f%% (clean %6.2f%%)  max |δ| %.3f px  pixels in [%.2f, %.2f]",
                100 * r.adversarialAccuracy, 100 * r.cleanAccuracy, r.maxPerturbationPixels, r.minPixel, r.maxPixel)
    }
}

/// The run a checkpoint belongs to: `<suite>/<run>/checkpoints/ckpt-….safetensors` → `<run>`.
func runName(_ path: String) -> String {
    var url = URL(fileURLWithPath: path).standardizedFileURL
    if url.pathExtension == "safetensors" { url.deleteLastPathComponent() }
    if url.lastPathComponent == "checkpoints" { url.deleteLastPathComponent() }
    return url.lastPathComponent
}
