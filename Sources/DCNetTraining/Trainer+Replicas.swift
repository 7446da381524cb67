import DCNetFormats
import MPI

// Keeping the replicas identical: the initial broadcast, the checksum that proves it, and the
// running statistics averaged after each step.
extension Trainer {
    func broadcastReplicaState() throws {
        communicator.watchdog?.enter("initial broadcast of parameters and state")
        try communicator.broadcast(network.valueBuffer, root: 0)
        for s in network.state {
            try communicator.broadcast(UnsafeMutableBufferPointer(start: s.data, count: s.count), root: 0)
        }
        for o in optimizer.stateBuffers {
            try communicator.broadcast(UnsafeMutableBufferPointer(start: o.data, count: o.count), root: 0)
        }
        var counters = [
            Int64(progress.epoch), Int64(progress.stepInEpoch), Int64(progress.globalStep),
            Int64(progress.adamSteps), Int64(progress.ranks),
        ]
        try communicator.broadcast(&counters, root: 0)
        progress.epoch = Int(counters[0]); progress.stepInEpoch = Int(counters[1])
        progress.globalStep = Int(counters[2]); progress.adamSteps = Int(counters[3])
        progress.ranks = Int(counters[4])
        optimizer.adamSteps = progress.adamSteps
        var best = [progress.bestTestAccuracy]
        try communicator.broadcast(&best, root: 0)
        progress.bestTestAccuracy = best[0]
    }

    /// CRC32 of every parameter, running statistic and optimizer moment; all ranks must agree.
    public func replicaChecksum() -> UInt32 {
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(network.valueBuffer))
        for s in network.state { crc.update(UnsafeRawBufferPointer(start: s.data, count: s.count * 4)) }
        for o in optimizer.stateBuffers { crc.update(UnsafeRawBufferPointer(start: o.data, count: o.count * 4)) }
        return crc.value
    }

    /// Every rank whose replica differs from rank 0's is named.
    public func verifyIdenticalReplicas() throws {
        let mine = Int64(replicaChecksum())
        communicator.watchdog?.enter("replica checksum broadcast")
        let reference = try communicator.broadcast(mine, root: 0)
        try communicator.agree("comparing the replicas after the broadcast") {
            guard mine == reference else {
                throw LocalFailure(
                    "this replica's checksum \(String(mine, radix: 16)) differs from rank 0's \(String(reference, radix: 16))"
                )
            }
        }
    }

    /// Without synchronised statistics each rank's BatchNorm running statistics and running mean
    /// patch norms follow its own shard; averaging them after every step keeps the replicas identical
    /// (evaluation shards, rank 0's checkpoints, `replicaChecksum`). The EMAs are linear, so this is
    /// the average of the per-rank estimates.
    func averageRunningStatistics() throws {
        guard communicator.size > 1, !config.syncBatchNorm, stateCount > 0 else { return }
        var offset = 0
        for s in network.state { (statePacked + offset).update(from: s.data, count: s.count); offset += s.count }
        communicator.watchdog?.enter("running-statistics average")
        try communicator.allReduce(UnsafeMutableBufferPointer(start: statePacked, count: stateCount), op: .sum)
        offset = 0
        let ranks = Float(communicator.size)
        for s in network.state {
            for i in 0..<s.count { s.data[i] = statePacked[offset + i] / ranks }
            offset += s.count
        }
    }

    // MARK: - the loop
}
