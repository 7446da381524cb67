import DCNetFormats
import DCNetLayers
import DCNetModels
import DCNetTensor
import Foundation

/// Where a run stands: enough, with the parameters, state and optimizer moments, to continue exactly.
/// The data order and augmentation are pure functions of (seed, epoch, index), so the epoch and
/// the step within it are the whole data-order and RNG state.
public struct TrainingProgress: Codable, Sendable, Equatable {
    public var epoch = 0
    public var stepInEpoch = 0
    public var globalStep = 0
    public var adamSteps = 0
    public var bestTestAccuracy: Double = 0
    public var ranks = 1
    public init() {}

    /// Values no run of `config` can have reached, each naming the field and the value.
    public func problems(config: TrainingConfig) -> [String] {
        var p: [String] = []
        // Not `(0...config.epochs).contains`: a stored negative epoch count would make that range trap.
        if epoch < 0 || epoch > config.epochs {
            p.append("progress.epoch \(epoch) is outside 0...\(config.epochs)")
        }
        if stepInEpoch < 0 { p.append("progress.stepInEpoch \(stepInEpoch) is negative") }
        if globalStep < max(stepInEpoch, epoch) {
            p.append("progress.globalStep \(globalStep) is below the epoch \(epoch) and step in epoch \(stepInEpoch)")
        }
        if !(0...max(globalStep, 0)).contains(adamSteps) {
            p.append("progress.adamSteps \(adamSteps) is outside 0...globalStep (\(globalStep))")
        }
        if !(0...1).contains(bestTestAccuracy) {
            p.append("progress.bestTestAccuracy \(bestTestAccuracy) is outside [0, 1]")
        }
        if !(1...1_000_000).contains(ranks) { p.append("progress.ranks \(ranks) is outside 1...1000000") }
        return p
    }
}

public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String, message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

/// Checkpoints: safetensors files (parameters as `param/NAME`, running statistics as `state/NAME`,
/// optimizer moments as `optimizer.moment1/NAME`) with the configuration and progress as JSON in the
/// metadata. `ckpt-00001234.safetensors` in the checkpoint directory.
///
/// Format versions: 2 (written) has a CRC-32 over the whole file, so an edited configuration or
/// progress is caught, and one copy of the model configuration (inside `dcnet.training`).
/// 1 (still read) has a CRC-32 of the data section only and a second copy of the model in
/// `dcnet.model`, which was never used; its metadata is unprotected, and readers say so.
public enum Checkpoint {
    public static let formatVersion = "2"
    public static let readableVersions = ["1", "2"]

    public static func fileName(step: Int) -> String { String(format: "ckpt-%08d.safetensors", step) }

    /// Metadata key of the GEMM precision the run was training in (the tensors are fp32 whatever it says).
    public static let precisionKey = "dcnet.precision"

    public static func write(
        to path: String, network: Network, optimizer: Optimizer,
        config: TrainingConfig, progress: TrainingProgress, precision: Precision = .fp32
    ) throws {
        var file = SafeTensorsFile()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        file.metadata["dcnet.format"] = "dcnet-checkpoint"
        file.metadata["dcnet.format_version"] = formatVersion
        file.metadata["dcnet.training"] = String(decoding: try encoder.encode(config), as: UTF8.self)
        file.metadata["dcnet.progress"] = String(decoding: try encoder.encode(progress), as: UTF8.self)
        file.metadata[precisionKey] = precision.rawValue
        for p in network.parameters {
            file.append("param/\(p.name)", StoredTensor(copying: p.value, count: p.count, shape: p.dims))
        }
        for s in network.state {
            file.append("state/\(s.name)", StoredTensor(copying: s.data, count: s.count))
        }
        for o in optimizer.stateBuffers {
            file.append(o.name, StoredTensor(copying: o.data, count: o.count))
        }
        file.checksumScope = .wholeFile
        try file.write(to: path)
    }

    /// Writes the model of `contents` to `path`: its parameters and statistics, configuration and
    /// progress, without the optimizer state (about a third of an Adam checkpoint's size). It reads
    /// as a checkpoint for evaluation, attacks and features; `train --resume` refuses it (the
    /// optimizer state is missing) and never picks it up, as it is not named `ckpt-*`.
    public static func writeModel(_ contents: Contents, to path: String) throws {
        var file = SafeTensorsFile(metadata: contents.file.metadata)
        file.metadata[SafeTensorsFile.checksumKey] = nil
        file.metadata["dcnet.contents"] = "model"
        for (name, tensor) in contents.file.tensors where !name.hasPrefix("optimizer.") {
            file.append(name, tensor)
        }
        file.checksumScope = .wholeFile
        try file.write(to: path)
    }

    /// What a checkpoint holds before it is applied to a network.
    public struct Contents {
        public let path: String
        public let file: SafeTensorsFile
        public let config: TrainingConfig
        public let progress: TrainingProgress
        public let version: String
        /// Whether the checksum covers the metadata too (format 2); format 1 protects the data only.
        public var metadataProtected: Bool { file.checksumScope == .wholeFile }
        /// What a reader should tell the user about this file ("" when nothing).
        public var note: String {
            metadataProtected
                ? ""
                : "\(path): checkpoint format version \(version): its configuration and progress are not covered by "
                    + "the checksum (only the tensors are); checkpoints written from now on are version "
                    + formatVersion
        }
    }

    /// Reads and verifies (checksum, format version, every decoded value) without touching any network.
    public static func read(_ path: String) throws -> Contents {
        let file = try SafeTensorsFile.read(path: path, requireChecksum: true)
        func fail(_ message: String) -> CheckpointError { CheckpointError(path: path, message: message) }
        guard file.metadata["dcnet.format"] == "dcnet-checkpoint" else {
            throw fail("not a dcnet-dist checkpoint (no dcnet.format metadata)")
        }
        let version = file.metadata["dcnet.format_version"] ?? "none"
        guard readableVersions.contains(version) else {
            throw fail(
                "checkpoint format version \(version) is not one this dcnet-dist reads "
                    + "(\(readableVersions.joined(separator: ", ")))")
        }
        if version != "1" && file.checksumScope != .wholeFile {
            throw fail(
                "format version \(version) needs a checksum over the whole file (crc32-file); the header was edited")
        }
        guard let t = file.metadata["dcnet.training"]?.data(using: .utf8),
            let p = file.metadata["dcnet.progress"]?.data(using: .utf8)
        else {
            throw fail("missing training configuration or progress metadata")
        }
        let config: TrainingConfig, progress: TrainingProgress
        do {
            config = try JSONDecoder().decode(TrainingConfig.self, from: t)
            progress = try JSONDecoder().decode(TrainingProgress.self, from: p)
        } catch {
            throw fail("unreadable configuration metadata: \(error)")
        }
        // Before any allocation that depends on them: a stored width of 10⁹ must not become a network.
        let problems = config.problems() + progress.problems(config: config)
        if !problems.isEmpty {
            throw fail("invalid stored configuration or progress:\n  " + problems.joined(separator: "\n  "))
        }
        return Contents(path: path, file: file, config: config, progress: progress, version: version)
    }

    /// Copies every tensor into `network` (and `optimizer`), after checking that the checkpoint was
    /// written from the same model configuration and that every shape matches.
    public static func apply(_ c: Contents, to network: Network, optimizer: Optimizer?, model: ModelConfig) throws {
        if c.config.model != model {
            let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
            let a = (try? enc.encode(c.config.model)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
            let b = (try? enc.encode(model)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
            throw CheckpointError(
                path: c.path, message: "written by a different model:\n  checkpoint: \(a)\n  this run:   \(b)")
        }
        for p in network.parameters {
            let t = try c.file.require("param/\(p.name)", path: c.path)
            guard t.shape == p.dims else {
                throw CheckpointError(
                    path: c.path, message: "param/\(p.name) has shape \(t.shape), the model needs \(p.dims)")
            }
            try t.copyFloats(into: p.value, count: p.count, name: "param/\(p.name)")
        }
        for s in network.state {
            try c.file.require("state/\(s.name)", path: c.path).copyFloats(
                into: s.data, count: s.count, name: "state/\(s.name)")
        }
        if let optimizer {
            for o in optimizer.stateBuffers {
                guard let t = c.file[o.name] else {
                    if c.config.optimizer != optimizer.config.optimizer { continue }
                    throw CheckpointError(path: c.path, message: "missing optimizer state \(o.name)")
                }
                try t.copyFloats(into: o.data, count: o.count, name: o.name)
            }
            optimizer.adamSteps = c.progress.adamSteps
        }
    }

    /// Checkpoints in `directory`, newest (highest step) first.
    public static func list(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("ckpt-") && $0.hasSuffix(".safetensors") }
            .sorted(by: >)
            .map { directory + "/" + $0 }
    }

    /// The newest checkpoint that verifies; damaged ones are reported through `skipped` and passed over.
    public static func newestValid(in directory: String, skipped: (String, Error) -> Void) -> Contents? {
        for path in list(in: directory) {
            do { return try read(path) } catch { skipped(path, error) }
        }
        return nil
    }

    /// Deletes all but the newest `keep` checkpoints.
    public static func prune(directory: String, keep: Int) {
        for path in list(in: directory).dropFirst(keep) { try? FileManager.default.removeItem(atPath: path) }
    }
}

extension StoredTensor {
    /// Copies a tensor view; shape `[n, c, h, w]`, or `shape` if given (same element count).
    public init(_ tensor: Tensor, shape: [Int]? = nil) {
        let s = tensor.shape
        self.init(copying: tensor.data, count: tensor.count, shape: shape ?? [s.n, s.c, s.h, s.w])
    }
}
