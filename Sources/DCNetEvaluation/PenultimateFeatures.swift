import DCNetData
import DCNetFormats
import DCNetModels
import DCNetTraining
import Foundation
import MPI

/// The penultimate features of a labelled set (the globally pooled features the classifier sees),
/// for the feature-geometry claims: how tightly each class clusters in angle and how far apart
/// the class centres are.
public struct PenultimateFeatures: Sendable {
    /// Row-major [count, dimension].
    public var values: [Float]
    public var labels: [UInt8]
    public var dimension: Int
    public var count: Int { labels.count }

    public init(values: [Float], labels: [UInt8], dimension: Int) {
        precondition(values.count == labels.count * dimension, "features must hold count × dimension values")
        self.values = values; self.labels = labels; self.dimension = dimension
    }

    /// Tensor names of the file: `features` [N, D] F32 and `labels` [N] U8.
    public static let featuresName = "features", labelsName = "labels"

    /// The safetensors file: the two tensors plus `metadata` (the checkpoint and model).
    public func file(metadata: [String: String]) -> SafeTensorsFile {
        var f = SafeTensorsFile(metadata: metadata)
        f.append(Self.featuresName, StoredTensor(floats: values, shape: [count, dimension]))
        f.append(Self.labelsName, StoredTensor(uint8s: labels, shape: [count]))
        return f
    }

    /// Reads a file written by `file(metadata:)`; the metadata comes back as stored.
    public static func read(_ path: String) throws -> (features: PenultimateFeatures, metadata: [String: String]) {
        let f = try SafeTensorsFile.read(path: path)
        guard let x = f[featuresName], x.shape.count == 2, let values = x.floats else {
            throw SafeTensorsError(.invalidArgument, path: path, "no F32 tensor \"\(featuresName)\" of shape [N, D]")
        }
        guard let y = f[labelsName], y.shape == [x.shape[0]] else {
            throw SafeTensorsError(.invalidArgument, path: path, "no tensor \"\(labelsName)\" of shape [\(x.shape[0])]")
        }
        let labels: [UInt8]
        if let u = y.uint8s {
            labels = u
        } else if let i = y.int64s, i.allSatisfy({ (0...255).contains($0) }) {
            labels = i.map { UInt8($0) }
        } else {
            throw SafeTensorsError(.invalidArgument, path: path, "\"\(labelsName)\" must be U8 or I64 class indices")
        }
        return (PenultimateFeatures(values: values, labels: labels, dimension: x.shape[1]), f.metadata)
    }
}

extension CheckpointedModel {
    /// Evaluation-mode penultimate features of `dataset`, distributed like `evaluate`: each rank
    /// takes its contiguous evaluation shard and the shards are summed onto rank 0 (every other
    /// rank contributes zeros there, so the sum is exact). Rank 0 gets the features; the others nil.
    public func penultimateFeatures(_ dataset: LabeledImages) throws -> PenultimateFeatures? {
        let D = network.penultimateShape.perSample
        var values = [Float](repeating: 0, count: dataset.count * D)
        Trainer.forEachEvaluationBatch(
            network: network, dataset: dataset, scaling: config.scaling.scaling, communicator: communicator,
            images: images, labels: labels
        ) { batch, input in
            let f = network.penultimate(input)
            values.withUnsafeMutableBufferPointer {
                ($0.baseAddress! + batch.lowerBound * D).update(from: f.data, count: batch.count * D)
            }
        }
        communicator.watchdog?.enter("gathering features")
        try communicator.reduce(&values, op: .sum, root: 0)
        guard communicator.rank == 0 else { return nil }
        return PenultimateFeatures(values: values, labels: dataset.labels, dimension: D)
    }
}
