import DCNetData
import DCNetLayers
import DCNetModels

/// Accuracy of `network` on `dataset` with batches of its built size, forward in `mode`
/// (training mode normalises with batch statistics and updates the running ones; no update step).
public func accuracy(of network: Network, on dataset: LabeledImages, mode: Mode, scaling: Scaling = .authors) -> Double
{
    let batch = network.inputShape.n
    let images = network.arena.tensor(network.inputShape)
    let labels = UnsafeMutablePointer<Int32>.allocate(capacity: batch)
    defer { labels.deallocate() }
    var correct = 0, start = 0
    while start < dataset.count {
        let end = min(start + batch, dataset.count)
        fillBatch(
            images: dataset, indices: start..<end, epoch: 0, seed: 0, augment: false,
            scaling: scaling, into: images.data, labels: labels)
        let logits = network.forward(images.prefix(samples: end - start), mode: mode)
        let (_, c) = network.loss.forward(logits: logits, labels: labels)
        correct += c
        start = end
    }
    return Double(correct) / Double(max(dataset.count, 1))
}
