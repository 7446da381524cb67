import DCNetTensor
import Foundation

/// Mean softmax cross-entropy over the batch, with optional label smoothing
/// (target = (1 − s)·onehot + s/K).
public final class SoftmaxCrossEntropy {
    public let classes: Int
    public let labelSmoothing: Float
    private var probabilities: Tensor!, logitGradient: Tensor!
    public private(set) var predictions: UnsafeMutablePointer<Int32>!
    /// Per-sample loss of the last forward (for evaluation sums).
    public private(set) var sampleLoss: UnsafeMutablePointer<Float>!
    private var labels: UnsafePointer<Int32>!
    private var batch = 0

    public init(classes: Int, labelSmoothing: Float = 0) {
        self.classes = classes; self.labelSmoothing = labelSmoothing
    }

    public func build(batch: Int, arena: Arena) {
        let s = Shape(n: batch, c: classes)
        probabilities = arena.tensor(s); logitGradient = arena.tensor(s)
        predictions = UnsafeMutablePointer<Int32>.allocate(capacity: batch)
        sampleLoss = arena.floats(batch)
    }
    deinit { predictions?.deallocate() }

    /// Returns the mean loss and the number of correct top-1 predictions.
    public func forward(logits: Tensor, labels: UnsafePointer<Int32>) -> (loss: Float, correct: Int) {
        let N = logits.shape.n, K = classes
        alwaysPrecondition(logits.shape.perSample == K)
        self.labels = labels; batch = N
        var total = 0.0, correct = 0
        let offTarget = labelSmoothing / Float(K), onTarget = 1 - labelSmoothing + offTarget
        for n in 0..<N {
            let z = logits.sample(n), p = probabilities.sample(n)
            var maxValue = -Float.infinity, argmax = 0
            for k in 0..<K where z[k] > maxValue { maxValue = z[k]; argmax = k }
            var sum: Float = 0
            for k in 0..<K { p[k] = Foundation.exp(z[k] - maxValue); sum += p[k] }
            let logSum = Foundation.log(sum)
            let label = Int(labels[n])
            var loss: Float = 0
            for k in 0..<K {
                let logP = z[k] - maxValue - logSum
                loss -= (k == label ? onTarget : offTarget) * logP
                p[k] /= sum
            }
            sampleLoss[n] = loss
            total += Double(loss)
            predictions[n] = Int32(argmax)
            if argmax == label { correct += 1 }
        }
        return (Float(total / Double(max(N, 1))), correct)
    }

    /// dL/dlogits of the mean loss, scaled by `scale` (e.g. to average over replicas differently).
    public func backward(scale: Float = 1) -> Tensor {
        let N = batch, K = classes
        let g = logitGradient.prefix(samples: N)
        let offTarget = labelSmoothing / Float(K), onTarget = 1 - labelSmoothing + offTarget
        let inv = scale / Float(N)
        for n in 0..<N {
            let p = probabilities.sample(n), out = g.sample(n), label = Int(labels[n])
            for k in 0..<K { out[k] = (p[k] - (k == label ? onTarget : offTarget)) * inv }
        }
        return g
    }
}
