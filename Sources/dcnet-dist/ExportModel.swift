import ArgumentParser
import DCNetEvaluation
import DCNetFormats
import DCNetTraining
import Foundation

/// Keeps a run's final model small enough to commit with its records: the parameters and
/// statistics of a checkpoint without the optimizer state.
struct ExportModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-model",
        abstract: "Write a checkpoint's model (parameters and statistics, no optimizer state) to a file.",
        discussion: """
            The file is read by eval, attack and features like a checkpoint (--checkpoint FILE); train --resume \
            cannot continue from it. Exits 1 when the checkpoint is damaged or missing.
            """)

    @Argument(help: "Checkpoint file, or a directory of checkpoints (its newest readable one is used).")
    var checkpoint: String
    @Option(help: "The model file to write (.safetensors).") var out: String

    func run() throws {
        do {
            let contents = try CheckpointedModel.read(checkpoint)
            try Checkpoint.writeModel(contents, to: out)
            let p = contents.progress
            print(
                "dcnet-dist: \(out): model of \(contents.path) (epoch \(p.epoch) of \(contents.config.epochs), "
                    + "global step \(p.globalStep))")
        } catch {
            FileSink.standardError.writeIgnoringErrors("dcnet-dist: export-model: \(error)\n")
            throw ExitCode(1)
        }
    }
}
