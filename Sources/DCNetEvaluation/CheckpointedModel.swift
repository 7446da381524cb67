import BLAS
import DCNetData
import DCNetFormats
import DCNetLayers
import DCNetModels
import DCNetTensor
import DCNetTraining
import MPI

/// A network restored from a checkpoint on every rank, for evaluation and attacks: the one path
/// by which `eval` and `attack` load a model.
public final class CheckpointedModel {
    /// The checkpoint file that was loaded (the newest one when a directory was given).
    public let path: String
    public let config: TrainingConfig
    public let network: Network
    public let communicator: Communicator
    public let images: Tensor
    public let labels: UnsafeMutablePointer<Int32>
    /// The GEMM precision the ranks agreed on (the checkpoint's tensors are fp32 whatever it is).
    public let precision: Precision

    /// `path` is a checkpoint file or a directory of checkpoints (its newest checkpoint that reads
    /// correctly is used). Every step is agreed across ranks, so a failure on one rank ends the job
    /// on all of them with the same message. `algorithm` may differ from the one the checkpoint was trained with.
    public init(
        path: String, batch: Int, threads: Int?, algorithm: ConvolutionAlgorithm = .standard,
        precision: PrecisionRequest = .fp32, communicator: Communicator
    ) throws {
        self.communicator = communicator
        BLAS.threadCount = threadsPerRank(requested: threads, communicator: communicator)
        let console = Console(rank: communicator.rank)
        let precision = try precision.resolve(communicator: communicator, console: console, threads: BLAS.threadCount)
        self.precision = precision
        let contents = try communicator.agree("reading checkpoint \(path)") { try Self.read(path) }
        let file = contents.path
        self.path = file
        if !contents.note.isEmpty { console.print("note: " + contents.note) }
        config = contents.config
        network = config.model.makeNetwork(batch: batch, algorithm: algorithm, precision: precision)
        let net = network, model = config.model
        try communicator.agree("loading checkpoint \(file)") {
            try Checkpoint.apply(contents, to: net, optimizer: nil, model: model)
        }
        images = network.arena.tensor(network.inputShape)
        labels = .allocate(capacity: batch)
    }
    deinit { labels.deallocate() }

    /// A file, or the newest checkpoint in a directory that reads without error (a damaged newest
    /// one is skipped, as `train --resume` skips it).
    public static func read(_ path: String) throws -> Checkpoint.Contents {
        guard FileIO.isDirectory(path) else { return try Checkpoint.read(path) }
        var failures: [String] = []
        if let newest = Checkpoint.newestValid(in: path, skipped: { failures.append("\($1)") }) { return newest }
        throw CheckpointError(
            path: path,
            message: failures.isEmpty
                ? "no checkpoint (ckpt-*.safetensors) in this directory"
                : "no readable checkpoint in this directory:\n  " + failures.joined(separator: "\n  "))
    }

    public func loadTestSet(directory: String) throws -> LabeledImages {
        let variant = config.variant
        return try communicator.agree("loading \(variant.rawValue) test data from \(directory)") {
            try CIFAR.load(directory: directory, variant: variant, split: .test)
        }
    }

    public func evaluate(_ dataset: LabeledImages) throws -> Trainer.Evaluation {
        try Trainer.evaluate(
            network: network, dataset: dataset, scaling: config.scaling.scaling,
            communicator: communicator, images: images, labels: labels)
    }
}
