import ArgumentParser
import DCNetTraining
import Foundation

/// Options of the commands that run one collective job over a checkpoint (`eval`, `attack`,
/// `features`): the test data, the threads, and the watchdog (like training, a lost host or a stopped
/// rank must end the job, not hang it). Each command keeps its own --checkpoint (what it means
/// differs) and --batch-size (attacks hold several models: a smaller default).
struct JobOptions: ParsableArguments {
    @Option(help: "Directory with the CIFAR binary files.") var data: String
    @Option(help: "OpenBLAS threads per rank.") var threads: Int?
    @Option(
        help: ArgumentHelp(
            "Seconds a rank may wait at one collective (loading and agreeing on the checkpoint, the final "
                + "reduction of the results) before the job ends, naming the ranks and hosts that did not arrive "
                + "(0: wait forever, warning every 60 s).",
            valueName: "seconds"))
    var collectiveTimeout: Double = RunOptions.defaultCollectiveTimeout

    func validate() throws {
        if let problem = RunOptions.collectiveTimeoutProblem(collectiveTimeout) { throw ValidationError(problem) }
        if let t = threads, t <= 0 { throw ValidationError("--threads must be positive (got \(t))") }
        if !FileManager.default.fileExists(atPath: data) { throw ValidationError("--data \(data): no such directory") }
    }
}
