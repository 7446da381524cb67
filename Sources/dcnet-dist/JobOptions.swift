import ArgumentParser
import DCNetTraining

/// Options of the commands that run one collective job over a checkpoint (`eval`, `attack`,
/// `features`): like training, a lost host or a stopped rank must end the job, not hang it.
struct JobOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Seconds a rank may wait at one collective (loading and agreeing on the checkpoint, the final "
                + "reduction of the results) before the job ends, naming the ranks and hosts that did not arrive "
                + "(0: wait forever, warning every 60 s).",
            valueName: "seconds"))
    var collectiveTimeout: Double = RunOptions.defaultCollectiveTimeout

    func validate() throws {
        if let problem = RunOptions.collectiveTimeoutProblem(collectiveTimeout) { throw ValidationError(problem) }
    }
}
