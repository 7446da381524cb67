import BLAS
import DCNetData
import DCNetModels
import DCNetTensor
import MPI

/// A network restored from a checkpoint for evaluation (and attacks), on every rank.
public final class CheckpointedModel {
    public let path: String
    public let config: TrainingConfig
    public let network: Network
    public let communicator: Communicator
    public let images: Tensor
    public let labels: UnsafeMutablePointer<Int32>

    public init(path: String, batch: Int, threads: Int?, communicator: Communicator) throws {
        self.path = path
        self.communicator = communicator
        BLAS.threadCount = threadsPerRank(requested: threads, communicator: communicator)
        let console = Console(rank: communicator.rank)
        var contents: Checkpoint.Contents?
        try communicator.agree(console: console, what: "reading checkpoint \(path)") {
            contents = try Checkpoint.read(path)
        }
        config = contents!.config
        network = config.model.makeNetwork(batch: batch)
        let net = network, model = config.model
        try communicator.agree(console: console, what: "loading checkpoint \(path)") {
            try Checkpoint.apply(contents!, to: net, optimizer: nil, model: model)
        }
        images = network.arena.tensor(network.inputShape)
        labels = .allocate(capacity: batch)
    }
    deinit { labels.deallocate() }

    public func loadTestSet(directory: String) throws -> LabeledImages {
        var test: LabeledImages?
        let variant = config.variant
        try communicator.agree(
            console: Console(rank: communicator.rank),
            what: "loading \(variant.rawValue) test data from \(directory)"
        ) {
            test = try CIFAR.load(directory: directory, variant: variant, split: .test)
        }
        return test!
    }

    public func evaluate(_ dataset: LabeledImages) throws -> Trainer.Evaluation {
        try Trainer.evaluate(
            network: network, dataset: dataset, scaling: config.scaling.scaling,
            communicator: communicator, images: images, labels: labels)
    }
}
