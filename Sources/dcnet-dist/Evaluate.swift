import ArgumentParser
import DCNetData
import DCNetEvaluation
import DCNetLayers
import DCNetTraining
import Foundation
import MPI

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate a checkpoint on the test set (distributed over the ranks).")

    @Option(
        help:
            "Checkpoint written by dcnet-dist train (.safetensors), or a checkpoint directory: its newest readable one."
    )
    var checkpoint: String
    @Option(help: "Images per rank and forward pass.") var batchSize: Int = 200
    @OptionGroup var engine: EngineOptions
    @OptionGroup var job: JobOptions

    func validate() throws {
        if batchSize <= 0 { throw ValidationError("--batch-size must be positive (got \(batchSize))") }
        if !FileManager.default.fileExists(atPath: checkpoint) {
            throw ValidationError("--checkpoint \(checkpoint): no such file or directory")
        }
    }

    func run() throws {
        runJob(collectiveTimeout: job.collectiveTimeout) { world in
            let model = try CheckpointedModel(
                path: checkpoint, batch: batchSize, threads: job.threads, algorithm: engine.convolutionAlgorithm,
                precision: engine.precision,
                communicator: world)
            let test = try model.loadTestSet(directory: job.data)
            let e = try model.evaluate(test)
            let console = Console(rank: world.rank)
            console.print(
                String(
                    format: "%@: test accuracy %.2f%%, loss %.4f over %d images (%d rank(s))",
                    model.path, 100 * e.accuracy, e.loss, e.count, world.size))
            console.print("per-class accuracy:")
            for (k, a) in e.perClassAccuracy.enumerated() {
                let name = k < test.classNames.count ? test.classNames[k] : "class \(k)"
                console.print(String(format: "  %-12@ %6.2f%%", name, 100 * a))
            }
            if e.confusion.count <= 20 {
                console.print("confusion matrix (rows: label, columns: prediction):")
                for row in e.confusion { console.print(row.map { String(format: "%5d", $0) }.joined()) }
            }
            return 0
        }
    }
}
