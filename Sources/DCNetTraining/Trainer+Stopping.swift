import DCNetFormats
import Foundation
import MPI

// How a run ends: at the end of its epochs, at --max-steps, or on a stop signal, with a checkpoint
// when there is something new to save.
extension Trainer {
    /// The stop signal any rank received (0: none), agreed by all ranks: for the points where no
    /// step agreement follows soon (after start-up and after an evaluation).
    func agreedStopSignal() throws -> Int32 {
        try communicator.agree("stop-signal agreement", vote: PreemptionSignal.received) {}.vote
    }

    /// Ends the run for a stop signal, checkpointing only when a step was taken since the last
    /// checkpoint.
    func stop(by signal: Int32) throws -> Outcome {
        try writeTimelineIfDue(force: true)
        let name = PreemptionSignal.name(signal)
        if progress.globalStep == (checkpointedStep ?? 0) {
            let newest = checkpointedStep.map { " (the checkpoint of step \($0) is the newest)" } ?? ""
            console.print(
                stepLosses.isEmpty
                    ? "stopped by \(name) before training started\(newest)"
                    : "stopped by \(name): no step since the checkpoint of step \(progress.globalStep)")
        } else {
            console.print("stop requested (\(name)): checkpointing at step \(progress.globalStep)")
            try writeCheckpoint()
        }
        return .preempted
    }

    func finish(reason: String?) throws {
        if let reason { console.print("stopping: \(reason)") }
        if reason != nil && options.evalEvery > 0 { try report.evaluated(self, try evaluate()) }
        try writeCheckpoint()
        try writeTimelineIfDue(force: true)
    }

    /// Rank 0 writes (temporary file, fsync, rename, checksum inside); all ranks learn whether it
    /// worked from the status all-reduce, which is also the barrier after the write.
    public func writeCheckpoint() throws {
        guard let dir = options.checkpointDirectory else { return }
        progress.adamSteps = optimizer.adamSteps
        let progress = progress, network = network, optimizer = optimizer, config = config
        let console = console, keep = options.keep
        let start = MPIRuntime.wallTime()
        defer {
            timeline?.spanBetweenSteps(
                "checkpoint", category: "checkpoint", from: start, to: MPIRuntime.wallTime(),
                lastStep: progress.globalStep)
        }
        try communicator.agree("writing a checkpoint") {
            guard communicator.rank == 0 else { return }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let path = dir + "/" + Checkpoint.fileName(step: progress.globalStep)
            try Checkpoint.write(
                to: path, network: network, optimizer: optimizer, config: config, progress: progress,
                precision: precision)
            Checkpoint.prune(directory: dir, keep: keep)
            console.print("checkpoint: \(path)")
        }
        checkpointedStep = progress.globalStep
    }
}
