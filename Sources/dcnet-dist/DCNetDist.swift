import ArgumentParser
import DCNetLayers
import DCNetModels
import DCNetTraining
import Foundation
import MPI

@main
struct DCNetDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dcnet-dist",
        abstract: "Train and evaluate Decoupled Networks (Liu et al., CVPR 2018) data-parallel over MPI.",
        discussion: """
            Launch with `mpirun -np N dcnet-dist train ...`: every rank holds a replica, trains on its shard \
            of each global batch and averages gradients with all-reduce; rank 0 prints, evaluates and checkpoints. \
            Without mpirun it runs as a single rank.
            """,
        subcommands: [
            Train.self, Evaluate.self, Attack.self, Features.self, Report.self, Inspect.self, ExportModel.self,
            TensorBoardExport.self,
        ])

    /// `train --config FILE` is expanded into flags before ArgumentParser sees the command line.
    static func main() {
        let expanded: (arguments: [String], file: ConfigFile?)
        do {
            expanded = try ConfigFile.expand(Array(CommandLine.arguments.dropFirst()))
        } catch {
            Train.exit(withError: ValidationError("\(error)"))
        }
        ConfigFile.$current.withValue(expanded.file) { Self.main(expanded.arguments) }
    }
}

/// Runs `body` on every rank and turns failures into one clear message and a non-zero exit on all
/// ranks. Agreed failures (`AgreedFailure`, `JobError`: every rank knows) exit normally, rank 0
/// printing every failing rank's message; anything else may leave other
/// ranks inside a collective, so it aborts the MPI job. So does any exit with nonblocking operations
/// dropped in flight (an error unwound past them): finalising would wait for them.
///
/// `collectiveTimeout` (seconds; 0: none) installs the collective watchdog on the world communicator
/// of a multi-rank job, so a stopped rank or a lost host ends the job with the ranks named.
func runJob(collectiveTimeout: Double? = nil, _ body: (Communicator) throws -> Int32) -> Never {
    MPIRuntime.initialize()
    let world = Communicator.world
    let console = Console(rank: world.rank)
    var code: Int32
    do {
        if let timeout = collectiveTimeout, world.size > 1 { try world.installWatchdog(.job(timeout: timeout)) }
        code = try body(world)
    } catch let e as AgreedFailure {
        if world.rank == 0 { console.error("error: \(e)") }
        code = 1
    } catch let e as JobError {
        if world.rank == 0 || e.rank == world.rank { console.error("error: \(e)") }
        code = 1
    } catch {
        console.error("error on rank \(world.rank): \(error)")
        console.error("rank \(world.rank): ending the whole job (the other ranks cannot know of this error)")
        world.abort(code: 1)
    }
    if MPIRuntime.hasAbandonedRequests {
        console.error(
            "rank \(world.rank): nonblocking operations were left in flight (\(MPIRuntime.abandonedDescription)); "
                + "ending the whole job")
        world.abort(code: code == 0 ? 1 : code)
    }
    do {
        try MPIRuntime.finalize()
    } catch {
        console.error("rank \(world.rank): \(error); ending the whole job")
        world.abort(code: code == 0 ? 1 : code)
    }
    exit(code)
}
