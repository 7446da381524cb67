import DCNetFormats
import Foundation
import MPI

/// What a run starts from: the configuration every rank trains with, and on rank 0 the checkpoint
/// it resumes (the newest one that verifies). A resumed run takes the checkpoint's configuration,
/// including its global batch, whatever the rank count now; rank 0 decides and broadcasts, so
/// every rank plans the same run.
struct ResumePlan {
    let config: TrainingConfig
    /// Rank 0 only (the others receive the state by broadcast).
    let checkpoint: Checkpoint.Contents?

    static func negotiate(
        requested: TrainingConfig, options: RunOptions, communicator: Communicator, console: Console
    ) throws -> ResumePlan {
        guard options.resume, let dir = options.checkpointDirectory else {
            return ResumePlan(config: requested, checkpoint: nil)
        }
        let rank = communicator.rank
        var config = requested
        var checkpoint: Checkpoint.Contents?
        if rank == 0 {
            checkpoint = Checkpoint.newestValid(in: dir) { path, error in
                console.error("skipping damaged checkpoint \(path): \(error)")
            }
            if let c = checkpoint {
                config = c.config
                if !c.note.isEmpty { console.print("note: " + c.note) }
            }
        }
        var json = Array((try? JSONEncoder().encode(config)) ?? Data())
        communicator.watchdog?.enter("broadcast of the resumed configuration")
        let length = try communicator.broadcast(Int64(json.count), root: 0)
        if rank != 0 { json = Array(repeating: 0, count: Int(length)) }
        try communicator.broadcast(&json, root: 0)
        config = try communicator.agree("decoding the resumed configuration") {
            try JSONDecoder().decode(TrainingConfig.self, from: Data(json))
        }
        let stored = config.problems(ranks: communicator.size)
        if !stored.isEmpty {
            throw JobError(
                rank: rank, "the checkpoint's configuration cannot run here: " + stored.joined(separator: "; "))
        }
        return ResumePlan(config: config, checkpoint: checkpoint)
    }
}
