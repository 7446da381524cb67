import DCNetData
import DCNetFormats
import DCNetLayers
import DCNetMetrics
import DCNetModels
import DCNetTraining
import Foundation

/// Valid inputs of every format, made in-process: the mutations start from these.
enum Seeds {
    /// `count` CIFAR records with in-range labels and pseudo-random pixels.
    static func cifar(_ variant: CIFARVariant, count: Int, salt: Int) -> [UInt8] {
        var out: [UInt8] = []
        for i in 0..<count {
            if variant == .cifar100 { out.append(UInt8((i + salt) % 20)) }
            out.append(UInt8((i * 7 + salt) % variant.classCount))
            out += (0..<LabeledImages.imageBytes).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ (i &+ salt)) }
        }
        return out
    }

    /// One tensor of each dtype, an empty one and a scalar.
    static func safetensors(scope: SafeTensorsFile.ChecksumScope) throws -> [UInt8] {
        var f = SafeTensorsFile(metadata: ["note": "fuzz seed", "dcnet.format": "test"])
        f.append("w", StoredTensor(floats: [1, 2, 3, 4, 5, 6], shape: [2, 3]))
        f.append("d", StoredTensor(doubles: [0.5, -1]))
        f.append("i", StoredTensor(int64s: [1, -2, 3]))
        f.append("u", StoredTensor(uint8s: [1, 2, 3, 4, 5]))
        f.append("empty", StoredTensor(floats: [], shape: [0, 4]))
        f.append("scalar", StoredTensor(floats: [7], shape: []))
        f.checksumScope = scope
        return try f.serialized()
    }

    /// Checkpoints of tiny models: CNN-9 and ResNet-32, baseline and decoupled, SGD and Adam, both datasets.
    static func checkpoints(in dir: String) throws -> [[UInt8]] {
        let tanh = ConvolutionKind.decoupled(DecoupledOperator(magnitude: .tanh, radius: .learnable(decay: 0.9)))
        let sphere = ConvolutionKind.decoupled(
            DecoupledOperator(
                magnitude: .sphere, angular: .sigmoid, radius: .relative(decay: 0.9), learnableSharpness: true))
        let models: [(ModelConfig, OptimizerKind, CIFARVariant)] = [
            (ModelConfig(architecture: .cnn9, widths: [2, 2, 2]), .sgd, .cifar10),
            (ModelConfig(architecture: .cnn9, widths: [2, 4, 4], convolution: tanh), .adam, .cifar10),
            (
                ModelConfig(architecture: .resnet32, widths: [2, 2, 2], convolution: sphere, classes: 100), .sgd,
                .cifar100
            ),
        ]
        var out: [[UInt8]] = []
        for (k, (model, optimizerKind, variant)) in models.enumerated() {
            var config = TrainingConfig(model: model)
            config.optimizer = optimizerKind
            config.dataset = variant.rawValue
            config.epochs = 3
            config.stepMilestones = [1, 2]
            config.gradientClipNorm = k == 1 ? 5 : nil
            config.accumulation = k == 2 ? 2 : nil
            var progress = TrainingProgress()
            progress.epoch = 1; progress.stepInEpoch = 2; progress.globalStep = 9; progress.adamSteps = 9
            progress.bestTestAccuracy = 0.25
            let network = model.makeNetwork(batch: 2)
            let optimizer = Optimizer(config: config, network: network)
            let path = dir + "/seed-\(k).safetensors"
            try Checkpoint.write(to: path, network: network, optimizer: optimizer, config: config, progress: progress)
            out.append(try FileIO.readAll(path))
        }
        return out
    }

    /// A run's metrics.jsonl (with attack records, as the report merges attacks.jsonl into it) from the
    /// writer's own encoding. `shift` changes the numbers so two runs differ.
    static func metrics(run: String, shift: Double) throws -> String {
        var records: [MetricsRecord] = [
            .config(
                RunConfig(run: run, config: .object(["epochs": .number(3)]), commit: "abc", ranks: 2, parameters: 99))
        ]
        for e in 1...3 {
            let accuracy = 0.2 * Double(e) + shift
            records.append(
                .progress(ProgressRecord(step: e * 20 - 10, epoch: e - 1, loss: 2 - accuracy, accuracy: accuracy)))
            records.append(
                .epoch(
                    EpochRecord(
                        epoch: e, step: e * 20, trainLoss: 2 - accuracy, trainAccuracy: accuracy,
                        testLoss: 2.1 - accuracy,
                        testAccuracy: accuracy, imagesPerSecond: 400, wallSeconds: 10 * Double(e), learningRate: 0.01)))
            records.append(.evaluation(EvaluationRecord(step: e * 20, testLoss: 1.5, testAccuracy: accuracy)))
        }
        for (method, mode, steps) in [("fgsm", AttackMode.whiteBox, 1), ("bim", .blackBox, 5)] {
            records.append(
                .attack(
                    AttackRecord(
                        method: method, mode: mode, source: run, target: run, epsilonPixels: 8, epsilonModel: [0.06],
                        steps: steps, stepSizePixels: 2, cleanAccuracy: 0.6 + shift, adversarialAccuracy: 0.1 + shift,
                        images: 100, maxPerturbationPixels: 8, seed: 1, date: "2026-01-01T00:00:00Z")))
        }
        return try records.map { try $0.jsonLine() + "\n" }.joined()
    }

    static let suite = """
        {"name":"fuzz","budget":"tiny","runs":[{"name":"run-a","flags":[]}],
         "groups":[
          {"name":"operators","claim":"A converges faster","runs":["run-a","run-b"],"baseline":"run-b",
           "test":{"kind":"faster-convergence"}},
          {"name":"accuracy","claim":"B is better","runs":["run-b","run-a"],"test":{"kind":"higher-accuracy"}},
          {"name":"no gain","claim":"no gain","runs":["run-a","run-b"],"test":{"kind":"no-higher-accuracy"}},
          {"name":"reach","claim":"reaches 50%","runs":["run-a","run-b"],
           "test":{"kind":"reaches-accuracy","accuracy":0.5}},
          {"name":"robust","claim":"robust","runs":["run-a","run-b"],"test":{"kind":"more-robust"}}]}
        """
}
