import ArgumentParser
import DCNetData
import DCNetEvaluation
import DCNetFormats
import DCNetLayers
import DCNetReport
import DCNetTraining
import Foundation
import MPI

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the penultimate features of the test set (the classifier's input) as safetensors.",
        discussion: """
            Runs the test set in evaluation mode, distributed over the ranks (each rank its contiguous \
            evaluation shard), and writes on rank 0 `features` [N, D] (F32: the globally pooled features \
            the final linear layer sees) and `labels` [N] (U8), with metadata naming the checkpoint and the \
            model. Next to it goes the features' angular geometry (`features.geometry.json` for \
            `features.safetensors`: intra- and inter-class angles), which is what a suite's committed records \
            keep. `dcnet-dist report --features` reads <run>/features.safetensors files, or that record \
            where the features file is gone.
            """)

    @Option(help: "Checkpoint (.safetensors, or a checkpoint directory: its newest readable one).")
    var checkpoint: String
    @Option(help: "Output file (.safetensors; rank 0 writes it atomically).") var out: String
    @Option(help: "Only the first N test images.") var limit: Int?
    @Option(help: "Images per rank and forward pass.") var batchSize: Int = 200
    @OptionGroup var engine: EngineOptions
    @OptionGroup var job: JobOptions

    func validate() throws {
        if batchSize <= 0 { throw ValidationError("--batch-size must be positive (got \(batchSize))") }
        if let l = limit, l <= 0 { throw ValidationError("--limit must be positive (got \(l))") }
        if !FileManager.default.fileExists(atPath: checkpoint) {
            throw ValidationError("--checkpoint \(checkpoint): no such file or directory")
        }
    }

    func run() throws {
        runJob(collectiveTimeout: job.collectiveTimeout) { world in
            let console = Console(rank: world.rank)
            let model = try CheckpointedModel(
                path: checkpoint, batch: batchSize, threads: job.threads, algorithm: engine.convolutionAlgorithm,
                precision: engine.precision,
                communicator: world)
            var test = try model.loadTestSet(directory: job.data)
            if let limit { test = test.prefix(min(limit, test.count)) }
            let features = try model.penultimateFeatures(test)
            let geometryPath = FeatureGeometryRecord.path(forFeatures: out)
            try world.agree("writing \(out) and \(geometryPath)") {
                guard let features else { return }
                try features.file(metadata: featureMetadata(model)).write(to: out)
                try features.geometryRecord(source: out).write(to: geometryPath)
            }
            if let features {
                console.print(
                    "\(model.path): wrote \(out): features [\(features.count), \(features.dimension)] "
                        + "and labels of \(features.count) test images (\(world.size) rank(s)), and their "
                        + "angles to \(geometryPath)")
            }
            return 0
        }
    }

    /// What the features came from: the checkpoint file, its run and its model configuration.
    func featureMetadata(_ model: CheckpointedModel) -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let modelJSON = (try? encoder.encode(model.config.model)).map { String(decoding: $0, as: UTF8.self) }
        var m = [
            "dcnet.checkpoint": model.path, "dcnet.run": runName(model.path),
            "dcnet.dataset": model.config.dataset,
            "dcnet.model.architecture": model.config.model.architecture.rawValue,
            "dcnet.model.convolution": model.config.model.convolution.description,
            "dcnet.features.input_of": model.network.layers.last?.name ?? "",
        ]
        if let modelJSON { m["dcnet.model"] = modelJSON }
        return m
    }
}
