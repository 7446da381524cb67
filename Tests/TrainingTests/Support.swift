import DCNetData
import DCNetLayers
import DCNetModels
import DCNetTensor
import Foundation
import MPI
import TestSupport
import XCTest

@testable import DCNetTraining

#if canImport(Glibc)
import Glibc
#endif

/// Mean colour (R, G, B) of class k (the corners of a colour cube, then two repeats).
let classColours: [(Int, Int, Int)] = [
    (70, 70, 70), (185, 70, 70), (70, 185, 70), (70, 70, 185), (185, 185, 70),
    (185, 70, 185), (70, 185, 185), (185, 185, 185), (70, 70, 70), (185, 185, 185),
]

/// Texture of class k at (x, y), ±`amplitude`: horizontal, vertical or diagonal stripes, or flat
/// (classes ≥ 4 repeat the textures with a finer period). The texture lives inside each image, so
/// BatchNorm's batch statistics cannot normalise it away the way they partly do a mean colour.
func classTexture(_ k: Int, _ x: Int, _ y: Int, amplitude: Int = 60) -> Int {
    let period = k < 4 ? 2 : 1
    switch k % 4 {
    case 0: return (y / period) % 2 == 0 ? amplitude : -amplitude
    case 1: return (x / period) % 2 == 0 ? amplitude : -amplitude
    case 2: return ((x + y) / period) % 2 == 0 ? amplitude : -amplitude
    default: return 0
    }
}

/// A learnable synthetic CIFAR-10 set: class k < `classes` (pseudo-random per image, from `seed`) has
/// the colour `classColours[k]`, the texture `classTexture(k)` and uniform pixel noise ±`noise`.
func learnableImages(count: Int, seed: UInt64, noise: Int = 25, classes: Int = 10) -> LabeledImages {
    var rng = SplitMix64(seed: seed)
    var pixels = [UInt8](repeating: 0, count: count * LabeledImages.imageBytes)
    var labels = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        let k = Int((rng.next() >> 33) % UInt64(classes))
        labels[i] = UInt8(k)
        let (r, g, b) = classColours[k]
        let base = [r, g, b]
        for c in 0..<3 {
            for y in 0..<32 {
                for x in 0..<32 {
                    let n = Int(rng.next() >> 33) % (2 * noise + 1) - noise
                    pixels[i * 3072 + c * 1024 + y * 32 + x] = UInt8(clamping: base[c] + classTexture(k, x, y) + n)
                }
            }
        }
    }
    return LabeledImages(pixels: pixels, labels: labels, classCount: 10, classNames: CIFARNames.cifar10)
}

/// Writes `train` over data_batch_1..5.bin (in order, the last file takes the rest) and `test`
/// as test_batch.bin in the CIFAR-10 binary format.
func writeCIFAR10(train: LabeledImages, test: LabeledImages, to dir: String) throws {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let per = train.count / 5
    for k in 0..<5 {
        let lo = k * per, hi = k == 4 ? train.count : lo + per
        let bytes = train.subset(indices: lo..<hi).encodedRecords(variant: .cifar10)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/data_batch_\(k + 1).bin"))
    }
    try Data(test.encodedRecords(variant: .cifar10)).write(to: URL(fileURLWithPath: dir + "/test_batch.bin"))
}

/// A temp dir holding a learnable synthetic CIFAR-10 set (identical content for identical arguments,
/// so every rank can write its own copy).
/// Four classes (black, red, green, blue) by default: a tiny CNN learns them in a few dozen steps,
/// well past the ln 4 ≈ 1.39 loss of knowing only the class frequencies.
func learnableDataset(train: Int = 240, test: Int = 60, seed: UInt64 = 7, classes: Int = 4) throws -> TempDir {
    let dir = TempDir("data")
    try writeCIFAR10(
        train: learnableImages(count: train, seed: seed, classes: classes),
        test: learnableImages(count: test, seed: seed &+ 1000, classes: classes), to: dir.path)
    return dir
}

let tanhConv = ConvolutionKind.decoupled(DecoupledOperator(magnitude: .tanh, radius: .learnable(decay: 0.9)))

/// A tiny CNN-9 (stage widths 4, 8, 8).
func tinyModel(
    _ convolution: ConvolutionKind = .baseline, widths: [Int] = [4, 8, 8],
    batchNorm: Bool = true
) -> ModelConfig {
    ModelConfig(architecture: .cnn9, widths: widths, convolution: convolution, batchNorm: batchNorm)
}

/// Constant learning rate, no warm-up, no augmentation: fast, deterministic tiny runs.
func tinyConfig(_ model: ModelConfig, batch: Int = 16, lr: Float = 0.05, epochs: Int = 100) -> TrainingConfig {
    var c = TrainingConfig(model: model)
    c.globalBatch = batch
    c.learningRate = lr
    c.epochs = epochs
    c.warmupEpochs = 0
    c.schedule = .constant
    c.augment = false
    c.seed = 3
    return c
}

func tinyOptions(data: String, maxSteps: Int, checkpoints: String? = nil, resume: Bool = false) -> RunOptions {
    var o = RunOptions(dataDirectory: data)
    o.maxSteps = maxSteps
    o.checkpointDirectory = checkpoints
    o.resume = resume
    o.evalEvery = 0
    o.evalLimit = 16
    o.logEvery = 1000
    o.threads = 1
    return o
}

/// Every tensor a checkpoint stores, read from a live trainer: name → raw bytes.
func liveTensors(_ t: Trainer) -> [String: [UInt8]] {
    var out: [String: [UInt8]] = [:]
    func bytes(_ p: UnsafePointer<Float>, _ n: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: p, count: n * 4))
    }
    for p in t.network.parameters { out["param/\(p.name)"] = bytes(p.value, p.count) }
    for s in t.network.state { out["state/\(s.name)"] = bytes(s.data, s.count) }
    for o in t.optimizer.stateBuffers { out[o.name] = bytes(o.data, o.count) }
    return out
}

/// The process environment without the variables an MPI launcher sets, so a spawned program
/// starts as its own singleton instead of trying to join this job.
func environmentWithoutMPI() -> [String: String] {
    ProcessInfo.processInfo.environment.filter { key, _ in
        !["OMPI_", "PMIX_", "PRTE_", "OPAL_", "HYDRA_", "PMI_"].contains { key.hasPrefix($0) }
    }
}

struct ProcessResult { var status: Int32; var stdout: String; var stderr: String }

/// Runs `executable` with `arguments` to completion (killing it after `timeout` seconds). The
/// deadline only catches a hang: a debug build on a slow, busy machine takes minutes for what a
/// bare one does in seconds, and the tests must pass on both.
func runProcess(_ executable: String, _ arguments: [String], timeout: TimeInterval = 600) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.environment = environmentWithoutMPI()
    let out = TempDir("proc")
    for name in ["stdout", "stderr"] where !FileManager.default.createFile(atPath: out.file(name), contents: nil) {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: out.file(name)])
    }
    p.standardOutput = FileHandle(forWritingAtPath: out.file("stdout"))
    p.standardError = FileHandle(forWritingAtPath: out.file("stderr"))
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTFail("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
    }
    p.waitUntilExit()
    let so = (try? String(contentsOfFile: out.file("stdout"), encoding: .utf8)) ?? ""
    let se = (try? String(contentsOfFile: out.file("stderr"), encoding: .utf8)) ?? ""
    return ProcessResult(status: p.terminationStatus, stdout: so, stderr: se)
}

/// Python 3 with numpy and safetensors, or nil.
func pythonWithSafetensors() -> String? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { String($0) + "/python3" }
    for candidate in path + ["/usr/bin/python3", "/usr/local/bin/python3"]
    where FileManager.default.isExecutableFile(atPath: candidate) {
        if let r = try? runProcess(candidate, ["-c", "import numpy, safetensors"], timeout: 60), r.status == 0 {
            return candidate
        }
    }
    return nil
}

/// Whether jq (which scripts/experiments needs) is installed.
func jqInstalled() -> Bool {
    (try? runProcess("/bin/sh", ["-c", "command -v jq"]).status) == 0
}

/// The debug dcnet-dist next to the test bundle (or $DCNET_BIN).
func dcnetDistBinary() throws -> String {
    var candidates: [String] = []
    if let env = ProcessInfo.processInfo.environment["DCNET_BIN"] { candidates.append(env) }
    let bundleDir = URL(fileURLWithPath: Bundle(for: BundleAnchor.self).bundlePath).deletingLastPathComponent()
    candidates.append(bundleDir.appendingPathComponent("dcnet-dist").path)
    let argDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    candidates.append(argDir.appendingPathComponent("dcnet-dist").path)
    if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
    throw MissingTestInput(
        description: "dcnet-dist not found (looked at \(candidates)); build it with swift build --build-tests")
}
/// Something the tree or the test build provides is missing: the test fails (only a missing system
/// capability is a reason to skip).
struct MissingTestInput: Error, CustomStringConvertible {
    let description: String
}
/// A class of this test bundle, for finding the bundle's directory.
private final class BundleAnchor {}
