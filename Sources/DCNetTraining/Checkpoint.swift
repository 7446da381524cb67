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
}

public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String, message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

/// Checkpoints: safetensors files (parameters as `param/NAME`, running statistics as `state/NAME`,
/// optimizer moments as `optimizer.moment1/NAME`) with the configuration and progress as JSON in the
/// metadata and a CRC32 of the data. `ckpt-00001234.safetensors` in the checkpoint directory.
public enum Checkpoint {
    public static let formatVersion = "1"

    public static func fileName(step: Int) -> String { String(format: "ckpt-%08d.safetensors", step) }

    public static func write(
        to path: String, network: Network, optimizer: Optimizer,
        config: TrainingConfig, progress: TrainingProgress
    ) throws {
        var file = SafeTensorsFile()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        file.metadata["dcnet.format"] = "dcnet-checkpoint"
        file.metadata["dcnet.format_version"] = formatVersion
        file.metadata["dcnet.model"] = String(decoding: try encoder.encode(config.model), as: UTF8.self)
        file.metadata["dcnet.training"] = String(decoding: try encoder.encode(config), as: UTF8.self)
        file.metadata["dcnet.progress"] = String(decoding: try encoder.encode(progress), as: UTF8.self)
        for p in network.parameters {
            file.append("param/\(p.name)", StoredTensor(copying: p.value, count: p.count, shape: p.dims))
        }
        for s in network.state {
            file.append("state/\(s.name)", StoredTensor(copying: s.data, count: s.count))
        }
        for o in optimizer.stateBuffers {
            file.append(o.name, StoredTensor(copying: o.data, count: o.count))
        }
        try file.write(to: path)
    }

    /// What a checkpoint holds before it is applied to a network.
    public struct Contents {
        public let path: String
        public let file: SafeTensorsFile
        public let config: TrainingConfig
        public let progress: TrainingProgress
    }

    /// Reads and verifies (checksum, format version, metadata) without touching any network.
    public static func read(_ path: String) throws -> Contents {
        let file = try SafeTensorsFile.read(path: path, requireChecksum: true)
        guard file.metadata["dcnet.format"] == "dcnet-checkpoint" else {
            throw CheckpointError(path: path, message: "not a dcnet-dist checkpoint (no dcnet.format metadata)")
        }
        guard let version = file.metadata["dcnet.format_version"], version == formatVersion else {
            throw CheckpointError(
                path: path,
                message:
                    "checkpoint format version \(file.metadata["dcnet.format_version"] ?? "none") is not the "
                    + "supported version \(formatVersion)"
            )
        }
        let decoder = JSONDecoder()
        guard let t = file.metadata["dcnet.training"]?.data(using: .utf8),
            let p = file.metadata["dcnet.progress"]?.data(using: .utf8)
        else {
            throw CheckpointError(path: path, message: "missing training configuration or progress metadata")
        }
        do {
            return Contents(
                path: path, file: file, config: try decoder.decode(TrainingConfig.self, from: t),
                progress: try decoder.decode(TrainingProgress.self, from: p))
        } catch {
            throw CheckpointError(path: path, message: "unreadable configuration metadata: \(error)")
        }
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
