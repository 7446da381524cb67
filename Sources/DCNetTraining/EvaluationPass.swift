import DCNetData
import DCNetModels
import DCNetTensor
import MPI

// The evaluation-mode pass over a labelled set. The trainer runs it after each epoch; the
// DCNetEvaluation target runs it on a restored checkpoint (`dcnet-dist eval`).
extension Trainer {
    public struct Evaluation: Sendable {
        public var loss: Double, accuracy: Double, count: Int
        /// confusion[label][prediction]
        public var confusion: [[Int]]
        public var perClassAccuracy: [Double] {
            confusion.indices.map { k in
                let n = confusion[k].reduce(0, +)
                return n == 0 ? 0 : Double(confusion[k][k]) / Double(n)
            }
        }
    }

    /// Evaluation-mode pass over the test set: each rank takes a contiguous shard, so every image is
    /// counted exactly once whatever the rank count; sums are all-reduced.
    public func evaluate() throws -> Evaluation { try evaluate(testSet) }

    /// The same pass over another labelled set (the validation images).
    public func evaluate(_ dataset: LabeledImages) throws -> Evaluation {
        try Self.evaluate(
            network: network, dataset: dataset, scaling: config.scaling.scaling,
            communicator: communicator, images: images, labels: labels)
    }

    public static func evaluate(
        network: Network, dataset: LabeledImages, scaling: Scaling,
        communicator: Communicator, images: Tensor,
        labels: UnsafeMutablePointer<Int32>
    ) throws -> Evaluation {
        let K = network.outputShape.perSample
        var sums = [Double](repeating: 0, count: 2 + K * K)
        forEachEvaluationBatch(
            network: network, dataset: dataset, scaling: scaling, communicator: communicator, images: images,
            labels: labels
        ) { batch, input in
            let logits = network.forward(input, mode: .evaluation)
            _ = network.loss.forward(logits: logits, labels: labels)
            for i in 0..<batch.count {
                sums[0] += Double(network.loss.sampleLoss[i])
                sums[2 + Int(labels[i]) * K + Int(network.loss.predictions[i])] += 1
            }
            sums[1] += Double(batch.count)
        }
        communicator.watchdog?.enter("evaluation")
        try communicator.allReduce(&sums, op: .sum)
        let count = Int(sums[1])
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: K), count: K)
        var correct = 0
        for a in 0..<K {
            for b in 0..<K { confusion[a][b] = Int(sums[2 + a * K + b]) }
            correct += confusion[a][a]
        }
        return Evaluation(
            loss: sums[0] / Double(max(count, 1)), accuracy: Double(correct) / Double(max(count, 1)),
            count: count, confusion: confusion)
    }

    /// This rank's contiguous shard of `dataset` (so every image is counted exactly once whatever
    /// the rank count), in batches of the network's input capacity: `body` gets the batch's image
    /// indices and the filled input (labels in `labels`). Evaluation mode: no augmentation.
    public static func forEachEvaluationBatch(
        network: Network, dataset: LabeledImages, scaling: Scaling, communicator: Communicator, images: Tensor,
        labels: UnsafeMutablePointer<Int32>, _ body: (Range<Int>, Tensor) throws -> Void
    ) rethrows {
        let shard = DataOrder.evaluationShard(count: dataset.count, rank: communicator.rank, size: communicator.size)
        var start = shard.lowerBound
        let capacity = network.inputShape.n
        while start < shard.upperBound {
            let end = min(start + capacity, shard.upperBound)
            fillBatch(
                images: dataset, indices: start..<end, epoch: 0, seed: 0, augment: false,
                scaling: scaling, into: images.data, labels: labels)
            try body(start..<end, images.prefix(samples: end - start))
            start = end
        }
    }
}
