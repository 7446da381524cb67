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
        subcommands: [Train.self, Evaluate.self, Attack.self, Features.self, Report.self, Inspect.self])
}

/// Runs `body` on every rank and turns failures into one clear message and a non-zero exit on all
/// ranks. Agreed failures (JobError: every rank knows) exit normally; anything else may leave other
/// ranks inside a collective, so it aborts the MPI job.
func runJob(_ body: (Communicator) throws -> Int32) -> Never {
    MPIRuntime.initialize()
    let world = Communicator.world
    let code: Int32
    do {
        code = try body(world)
    } catch let e as JobError {
        if world.rank == 0 || e.rank == world.rank {
            FileHandle.standardError.write("dcnet-dist: error: \(e)\n".data(using: .utf8)!)
        }
        code = 1
    } catch {
        FileHandle.standardError.write("dcnet-dist: error on rank \(world.rank): \(error)\n".data(using: .utf8)!)
        world.abort(code: 1)
    }
    try? MPIRuntime.finalize()
    exit(code)
}
