import ArgumentParser
import DCNetFormats
import DCNetTraining
import Foundation

/// Reads a checkpoint the way `train --resume` and `eval` do (every check included) and prints
/// what it holds; no MPI, no network is built.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a checkpoint's format, checksum status, configuration, progress and tensors.",
        discussion: "Exits 1 when the file is damaged or is not a checkpoint this version can read.")

    @Argument(help: "Checkpoint file (.safetensors).") var checkpoint: String
    @Flag(help: "Print only the summary, not the tensor list.") var brief = false

    func run() throws {
        let contents: Checkpoint.Contents
        do {
            contents = try Checkpoint.read(checkpoint)
        } catch {
            FileSink.standardError.writeIgnoringErrors("dcnet-dist: inspect: \(error)\n")
            throw ExitCode(1)
        }
        for line in describe(contents) { print(line) }
    }

    func describe(_ c: Checkpoint.Contents) -> [String] {
        let size = (try? FileManager.default.attributesOfItem(atPath: c.path)[.size] as? Int) ?? nil
        var lines = ["file: \(c.path)\(size.map { " (\($0) bytes)" } ?? "")"]
        lines.append("format: dcnet-checkpoint, version \(c.version)")
        lines.append(
            c.metadataProtected
                ? "checksum: ok (CRC-32 of the whole file: tensors, configuration and progress)"
                : "checksum: ok for the tensors only (CRC-32 of the data section); the configuration and progress "
                    + "are not protected (format version \(c.version))")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let config = (try? encoder.encode(c.config)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        lines.append("configuration:")
        lines += config.split(separator: "\n").map { "  " + $0 }
        let p = c.progress
        lines.append(
            "progress: epoch \(p.epoch) done of \(c.config.epochs), step \(p.stepInEpoch) of the next epoch, "
                + "global step \(p.globalStep), Adam steps \(p.adamSteps), written by \(p.ranks) rank(s), "
                + String(format: "best test accuracy %.2f%%", 100 * p.bestTestAccuracy))
        let params = c.file.tensors.filter { $0.name.hasPrefix("param/") }
        let count = params.reduce(0) { $0 + $1.tensor.elementCount }
        let bytes = c.file.tensors.reduce(0) { $0 + $1.tensor.bytes.count }
        lines.append(
            "tensors: \(c.file.tensors.count) (\(params.count) parameter tensors, \(count) parameters; \(bytes) bytes)")
        if !brief {
            for (name, t) in c.file.tensors {
                lines.append("  \(name)  \(t.dtype.rawValue) \(t.shape)")
            }
        }
        return lines
    }
}
