// swift-tools-version:6.0
// Layers, bottom to top (each depends only on those above it in this list; docs/architecture.md):
//   CMPI, COpenBLAS, CZlib   system libraries + header-only C shims
//   CSignal                  the stop-signal flag and its sigaction handler (async-signal-safe C)
//   _CDNNL                   oneDNN's bf16 matmul through dlopen (oneDNN is optional: see its header)
//   MPI, BLAS                thin Swift wrappers (BLAS: OpenBLAS and oneDNN's bf16 matmul); MPI also holds
//                            the collective watchdog and the agreement of all ranks on an outcome
//   DCNetFormats             file formats without the trainer: safetensors, CRC-32, gzip, POSIX I/O, atomic writes
//   DCNetMetrics             the metrics.jsonl / attacks.jsonl schema, its writer and reader, TensorBoard files
//   DCNetTensor              tensors, buffer arena, im2col and elementwise kernels, bf16 conversion, the GEMM
//                            entry point of the layers (fp32: OpenBLAS; bf16: oneDNN or the reference path)
//   DCNetLayers              layers, decoupled operators (forward + backward)
//   DCNetRandom              seeded generators and the draws derived from them (no dependencies)
//   DCNetModels              CNN-9, ResNet-32
//   DCNetData                CIFAR readers, augmentation, data order
//   DCNetTraining            optimizers, schedules, checkpoints, the (distributed) trainer
//   DCNetEvaluation          a checkpoint restored on every rank, evaluation, adversarial attacks
//   DCNetReport              Markdown + SVG experiment reports (no MPI, no trainer)
//   dcnet-dist               the command-line tool
// The numerical kernels are compiled without overflow/bounds checks in release builds; the checks
// that guard their memory (shapes when layers are built, tensor views, convolution geometry) use
// `alwaysPrecondition`, which -Ounchecked keeps (it drops `precondition`). Everything else keeps Swift's checked -O: a
// release build of the training module with -Ounchecked crashed in an error path after loading a
// checkpoint (swift_getErrorValue on a bad pointer; Swift 6.3.1).
//
// The kernels are also compiled for Haswell-class x86-64 (AVX2 + FMA, x86-64-v3) when the building machine has it: the
// element-wise loops of the decoupled operators, BatchNorm and im2col then run 8 floats wide with
// fused multiply-adds instead of SSE2's 4. Every x86 server CPU since 2013 qualifies; building on
// one node and running on an older one needs DCNET_TARGET_CPU=x86-64 (any LLVM -target-cpu name works,
// and an empty value means the compiler's default).
import Foundation
import PackageDescription

func kernelTargetCPU() -> String? {
    if let forced = ProcessInfo.processInfo.environment["DCNET_TARGET_CPU"] {
        return forced.isEmpty ? nil : forced
    }
    #if arch(x86_64) && os(Linux)
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return nil }
    let set = Set(flags.split(separator: " ").map(String.init))
    return ["avx2", "fma", "bmi2", "movbe"].allSatisfy(set.contains) ? "haswell" : nil
    #else
    return nil
    #endif
}
/// Whether `cpu` has fused multiply-add: the kernels then use it (DCNET_FMA); elsewhere a·b + c
/// stays two instructions, because a fused one would become a libm call per element.
func targetHasFMA(_ cpu: String) -> Bool {
    let fmaCPUs: Set<String> = [
        "haswell", "broadwell", "skylake", "skylake-avx512", "cascadelake", "cooperlake",
        "icelake-client", "icelake-server", "tigerlake", "alderlake", "sapphirerapids",
        "znver1", "znver2", "znver3", "znver4", "x86-64-v3", "x86-64-v4",
    ]
    return fmaCPUs.contains(cpu)
}
let kernelCPU = kernelTargetCPU()
let kernels: [SwiftSetting] =
    [
        .unsafeFlags(
            ["-Ounchecked", "-Xcc", "-fno-math-errno"] + (kernelCPU.map { ["-target-cpu", $0] } ?? []),
            .when(configuration: .release))
    ] + (kernelCPU.map(targetHasFMA) == true ? [.define("DCNET_FMA", .when(configuration: .release))] : [])
let release: [SwiftSetting] = []

let package = Package(
    name: "dcnet-dist",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dcnet-dist", targets: ["dcnet-dist"]),
        .executable(name: "dcnet-bench", targets: ["dcnet-bench"]),
        .executable(name: "dcnet-fuzz", targets: ["dcnet-fuzz"]),
        .library(name: "MPI", targets: ["MPI"]),
        .library(name: "DCNetFormats", targets: ["DCNetFormats"]),
        .library(name: "DCNetMetrics", targets: ["DCNetMetrics"]),
        .library(name: "DCNet", targets: ["DCNetLayers", "DCNetModels", "DCNetTraining", "DCNetEvaluation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Recipes (`train --config`): TOML and YAML readers.
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),

        .target(name: "CSignal"),
        // oneDNN's bf16 matmul, opened with dlopen on first use (no build or run dependency on oneDNN).
        .target(name: "_CDNNL", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),

        .target(name: "MPI", dependencies: ["CMPI"], swiftSettings: release),
        .target(name: "BLAS", dependencies: ["COpenBLAS", "_CDNNL"], swiftSettings: release),
        .target(name: "DCNetFormats", dependencies: ["CZlib"], swiftSettings: release),
        .target(name: "DCNetMetrics", dependencies: ["DCNetFormats"], swiftSettings: release),
        .target(name: "DCNetTensor", dependencies: ["BLAS"], swiftSettings: kernels),
        .target(name: "DCNetLayers", dependencies: ["DCNetTensor", "BLAS"], swiftSettings: kernels),
        .target(name: "DCNetRandom", swiftSettings: release),
        .target(name: "DCNetModels", dependencies: ["DCNetLayers", "DCNetRandom"], swiftSettings: release),
        .target(name: "DCNetData", dependencies: ["DCNetFormats", "DCNetRandom"], swiftSettings: release),
        .target(
            name: "DCNetTraining",
            dependencies: ["DCNetModels", "DCNetData", "DCNetFormats", "DCNetMetrics", "MPI", "BLAS", "CSignal"],
            swiftSettings: release),
        .target(name: "DCNetEvaluation", dependencies: ["DCNetTraining", "DCNetMetrics"], swiftSettings: release),
        .target(name: "DCNetReport", dependencies: ["DCNetMetrics", "DCNetFormats"], swiftSettings: release),
        .executableTarget(
            name: "dcnet-dist",
            dependencies: [
                "DCNetTraining", "DCNetEvaluation", "DCNetReport", "DCNetMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "TOMLKit", package: "TOMLKit"), .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: release),
        .executableTarget(
            name: "dcnet-bench",
            dependencies: ["DCNetTraining", "DCNetEvaluation", "DCNetReport", "CMPI"], swiftSettings: release),
        // Mutates valid inputs of every format read and runs the readers on them (scripts/fuzz).
        .executableTarget(
            name: "dcnet-fuzz",
            dependencies: [
                "DCNetFormats", "DCNetData", "DCNetLayers", "DCNetModels", "DCNetTraining", "DCNetMetrics",
                "DCNetReport",
                "DCNetRandom",
            ],
            swiftSettings: release),

        // Code the test targets share (test targets cannot import each other).
        .target(name: "TestSupport", dependencies: ["DCNetData", "DCNetLayers", "DCNetModels"], path: "Tests/TestSupport"),
        .testTarget(name: "MPITests", dependencies: ["MPI"]),
        .testTarget(name: "BLASTests", dependencies: ["BLAS"]),
        .testTarget(name: "LayersTests", dependencies: ["DCNetLayers", "DCNetModels", "DCNetRandom"]),
        .testTarget(name: "DataTests", dependencies: ["DCNetData", "DCNetFormats", "DCNetRandom", "TestSupport"]),
        .testTarget(
            name: "TrainingTests",
            dependencies: [
                "DCNetTraining", "DCNetEvaluation", "DCNetFormats", "DCNetMetrics", "DCNetReport", "TestSupport",
            ]),
        .testTarget(name: "ReportTests", dependencies: ["DCNetReport", "DCNetMetrics", "TestSupport"]),
        .testTarget(name: "MetricsTests", dependencies: ["DCNetMetrics", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["DCNetFormats", "TestSupport"]),
        .testTarget(
            name: "EvaluationTests",
            dependencies: [
                "DCNetEvaluation", "DCNetTraining", "DCNetData", "DCNetLayers", "DCNetMetrics", "DCNetModels",
                "DCNetTensor", "TestSupport",
            ]),
    ]
)
