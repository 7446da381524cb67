import DCNetFormats
import Foundation
import MPI

/// `train --timeline FILE --timeline-steps A:B`: what every rank did during steps A...B, as one
/// Chrome trace (Trace Event JSON; Perfetto and chrome://tracing open it). A rank is a process
/// named after its rank and host, with a compute track (data, forward and backward per layer, the
/// wait for the all-reduce, the step agreement, the update, evaluation, checkpoints) and an
/// all-reduce track (each gradient bucket from its start to the moment the rank saw it complete).
///
/// Every rank keeps its events in memory; when step B is done (or the run ends first) all ranks
/// hand them to rank 0, which writes the one file. One file needs no shared filesystem and no merge
/// step. Clocks are aligned at start: after a barrier each rank reads its clock and rank 0 learns
/// the offsets; the spread of the offsets over repeated barriers bounds the alignment error.
public final class Timeline {
    public let path: String
    /// Global step numbers, counting from 1 (the first step of a run is step 1).
    public let steps: ClosedRange<Int>
    let rank: Int
    let host: String
    /// Added to this rank's clock to give rank 0's clock.
    private(set) var offset = 0.0
    /// The alignment error bound in seconds (the largest over ranks).
    private(set) var alignmentError = 0.0
    /// Rank 0's clock at alignment: time zero of the trace.
    private var origin = 0.0
    private var events: [String] = []
    /// The step being recorded (nil: outside the range).
    public private(set) var step: Int?
    private(set) var written = false
    /// When each gradient bucket's all-reduce of the current step started.
    var bucketStarts: [Int: Double] = [:]

    /// Compute and all-reduce tracks of a rank.
    enum Track: Int { case compute = 0, allReduce = 1 }

    /// Collective: every rank creates it at the same point, before training.
    init(path: String, steps: ClosedRange<Int>, communicator: Communicator) throws {
        self.path = path
        self.steps = steps
        rank = communicator.rank
        host = try communicator.processorNames()[communicator.rank]
        try align(communicator)
    }

    private func align(_ communicator: Communicator) throws {
        let repeats = 9
        var estimates: [[Double]] = Array(repeating: [], count: communicator.size)
        var origins: [Double] = []
        for _ in 0..<repeats {
            try communicator.barrier()
            let now = MPIRuntime.wallTime()
            let all = try communicator.allGather([now])
            origins.append(all[0])
            for r in 0..<communicator.size { estimates[r].append(all[0] - all[r]) }
        }
        func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        offset = median(estimates[rank])
        origin = origins.first ?? 0
        // Ranks leave a barrier within one message latency of each other; the spread of the
        // repeated estimates is that latency as seen here.
        alignmentError = estimates.map { ($0.max()! - $0.min()!) / 2 }.max() ?? 0
    }

    /// Called at the start of each step (`step` counts from 1): records while it is in the range.
    func beginStep(_ step: Int) {
        self.step = !written && steps.contains(step) ? step : nil
        bucketStarts.removeAll(keepingCapacity: true)
    }

    /// A span outside the steps (evaluation, a checkpoint) while the range is being recorded:
    /// numbered with the last step done.
    func spanBetweenSteps(_ name: String, category: String, from start: Double, to end: Double, lastStep: Int) {
        guard !written, steps.contains(lastStep) else { return }
        let saved = step
        step = lastStep
        span(name, category: category, from: start, to: end)
        step = saved
    }

    var isRecording: Bool { step != nil }

    /// One complete event ("X") from `start` to `end` on this rank's clock.
    func span(
        _ name: String, category: String, from start: Double, to end: Double, track: Track = .compute,
        args: [String: Int] = [:]
    ) {
        guard let step else { return }
        var allArgs = args
        allArgs["step"] = step
        let argText = allArgs.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
        let ts = (start + offset - origin) * 1e6, dur = max(end - start, 0) * 1e6
        events.append(
            "{\"name\":\(JSONText.quoted(name)),\"cat\":\"\(category)\",\"ph\":\"X\",\"pid\":\(rank),"
                + "\"tid\":\(track.rawValue),\"ts\":\(String(format: "%.3f", ts)),\"dur\":\(String(format: "%.3f", dur)),"
                + "\"args\":{\(argText)}}")
    }

    /// Collective: every rank's events to rank 0, which writes the file. Called once, when the last
    /// step of the range is done or the run ends before it. Returns the number of events written.
    @discardableResult
    func write(_ communicator: Communicator, console: Console) throws -> Int {
        guard !written else { return 0 }
        written = true
        step = nil
        let names = [
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":\(rank),\"args\":{\"name\":"
                + "\(JSONText.quoted("rank \(rank) (\(host))"))}}",
            "{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":\(rank),\"args\":{\"sort_index\":\(rank)}}",
            "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":\(rank),\"tid\":0,\"args\":{\"name\":\"compute\"}}",
            "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":\(rank),\"tid\":1,\"args\":{\"name\":\"all-reduce\"}}",
        ]
        let mine = Array((names + events).joined(separator: ",\n").utf8)
        let lengths = try communicator.allGather([mine.count])
        let width = lengths.max() ?? 0
        let padded = mine + [UInt8](repeating: 0, count: width - mine.count)
        let all = try communicator.allGather(padded)
        let count = events.count
        events = []
        let (steps, alignmentError, path) = (steps, alignmentError, path)
        try communicator.agree("writing the timeline \(path)") {
            guard communicator.rank == 0 else { return }
            let parts = (0..<communicator.size).map { r in
                String(decoding: all[(r * width)..<(r * width + lengths[r])], as: UTF8.self)
            }
            let text =
                "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"alignment_error_us\":"
                + String(format: "%.3f", alignmentError * 1e6)
                + ",\"steps\":\"\(steps.lowerBound):\(steps.upperBound)\"},"
                + "\n\"traceEvents\":[\n" + parts.joined(separator: ",\n") + "\n]}\n"
            try AtomicFile.write(text, to: path)
            console.print(
                "timeline: \(path): steps \(steps.lowerBound)–\(steps.upperBound) of \(communicator.size) rank(s), "
                    + String(format: "clocks aligned to rank 0 within %.1f µs", alignmentError * 1e6))
        }
        return count
    }

    /// `A:B` (global steps from 1, A ≤ B) as a range, or the reason it is not one.
    public static func parseSteps(_ text: String) -> Result<ClosedRange<Int>, TimelineStepsError> {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 1, b >= a else {
            return .failure(TimelineStepsError(text: text))
        }
        return .success(a...b)
    }
}

public struct TimelineStepsError: Error, CustomStringConvertible {
    public let text: String
    public var description: String {
        "--timeline-steps must be A:B with 1 ≤ A ≤ B, global steps counted from 1 (got '\(text)')"
    }
}
