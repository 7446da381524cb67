import DCNetData
import DCNetFormats
import DCNetMetrics
import DCNetModels
import DCNetReport
import DCNetTraining
import Foundation

/// One input format: how a case's input is made from the seeds, the file it is read from, and the
/// real reader run on that file.
struct Format {
    let name: String
    /// File name of the input inside the format's case directory (the readers look for these names).
    let fileName: String
    let generate: (inout Mutator) -> [UInt8]
    /// Runs the reader on `directory/fileName`: true when the input was accepted, false when it
    /// was refused with an error. Throws `Violation` when an accepted result is not valid.
    let run: (_ directory: String) throws -> Bool
}

/// Why the last case was refused (for --verbose).
nonisolated(unsafe) var lastRejection = ""

func rejected(_ error: Error) -> Bool {
    lastRejection = "\(error)"
    return false
}

/// An accepted input whose result breaks what the reader promises.
struct Violation: Error, CustomStringConvertible {
    let description: String
}

/// Everything the formats share: seeds made once per process and the fixed files of the report.
final class FuzzContext {
    let root: String
    let cifarSeeds: [CIFARVariant: [[UInt8]]]
    let gzipBomb: [UInt8]
    let safetensorsSeeds: [[UInt8]]
    let checkpointSeeds: [[UInt8]]
    let metricsSeed: String
    let suiteSeed = Seeds.suite
    /// A suite directory with two valid runs (run-a, run-b), read by the suite format's report.
    let reportSuite: String

    init(root: String) throws {
        self.root = root
        var cifar: [CIFARVariant: [[UInt8]]] = [:]
        for v in CIFARVariant.allCases { cifar[v] = (1...3).map { Seeds.cifar(v, count: $0, salt: $0) } }
        cifarSeeds = cifar
        // Decompresses to just more than any CIFAR file may hold: the size cap must stop it.
        gzipBomb = Gzip.compress([UInt8](repeating: 0, count: CIFAR.maxFileBytes + 3073), level: 1)
        safetensorsSeeds =
            try [.wholeFile, .data].map(Seeds.safetensors(scope:)) + [
                reframe(
                    header: Array("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}".utf8), data: [1, 2])
            ]
        let seedDir = root + "/seeds"
        try FileManager.default.createDirectory(atPath: seedDir, withIntermediateDirectories: true)
        checkpointSeeds = try Seeds.checkpoints(in: seedDir)
        metricsSeed = try Seeds.metrics(run: "run-a", shift: 0)
        reportSuite = root + "/report-suite"
        for (run, shift) in [("run-a", 0.0), ("run-b", 0.05)] {
            let dir = reportSuite + "/" + run
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Data(Seeds.metrics(run: run, shift: shift).utf8).write(to: URL(fileURLWithPath: dir + "/metrics.jsonl"))
        }
    }

    /// The groups the metrics format's report is rendered with.
    static let reportGroups = (try? ExperimentSuite.decode(Data(Seeds.suite.utf8), path: "seed").groups) ?? []

    lazy var formats: [Format] = [
        cifarFormat("cifar10", .cifar10, gzip: false),
        cifarFormat("cifar100", .cifar100, gzip: false),
        cifarFormat("cifar10-gz", .cifar10, gzip: true),
        cifarFormat("cifar100-gz", .cifar100, gzip: true),
        safetensorsFormat(),
        checkpointFormat(),
        metricsFormat(),
        suiteFormat(),
    ]

    // MARK: CIFAR

    private func cifarFormat(_ name: String, _ variant: CIFARVariant, gzip: Bool) -> Format {
        let seeds = cifarSeeds[variant]!, bomb = gzipBomb
        let file = variant.fileNames(split: .test)[0] + (gzip ? ".gz" : "")
        return Format(
            name: name, fileName: file,
            generate: { m in
                if gzip && m.chance(0.01) {
                    m.log.append("gzip bomb")
                    return m.chance(0.5) ? bomb : m.mutateBytes(bomb, rounds: 1)
                }
                var plain = m.pick(seeds)
                let rs = variant.recordSize
                switch m.below(10) {
                case 0..<3:
                    // A label at or past the edge of its range.
                    let record = m.below(plain.count / rs), byte = m.below(variant.labelBytes)
                    let value = UInt8(m.pick([0, 19, 20, 99, 100, 9, 10, 255]))
                    m.log.append("record \(record) label byte \(byte) = \(value)")
                    plain[record * rs + byte] = value
                case 3:
                    let n = m.pick([-rs - 1, -1, 1, rs - 1, rs + 1])
                    m.log.append("size \(n > 0 ? "+" : "")\(n)")
                    plain = n < 0 ? Array(plain.dropLast(-n)) : plain + [UInt8](repeating: 7, count: n)
                default:
                    if !gzip || m.chance(0.3) { plain = m.mutateBytes(plain) }
                }
                guard gzip else { return plain }
                var z = Gzip.compress(plain, level: 1)
                switch m.below(10) {
                case 0..<4: z = m.mutateBytes(z)
                case 4, 5:
                    // ISIZE, the size the trailer claims: the reader's first guess at the output size.
                    let v = m.pick(Mutator.extremeWords(size: plain.count))
                    m.log.append("isize = \(UInt32(truncatingIfNeeded: v))")
                    z.replaceSubrange(z.count - 4..<z.count, with: Mutator.littleEndian(v, 4))
                case 6:
                    m.log.append("two members")
                    z += Gzip.compress(m.pick(seeds), level: 1)
                case 7:
                    m.log.append("trailing bytes")
                    z += m.chance(0.5) ? [0, 0, 0, 0] : [0x1f, 0x8b, 8, 0]
                default: break
                }
                return z
            },
            run: { dir in
                let images: LabeledImages
                do { images = try CIFAR.load(directory: dir, variant: variant, split: .test) } catch {
                    return rejected(error)
                }
                guard images.pixels.count == images.count * LabeledImages.imageBytes,
                    images.labels.allSatisfy({ Int($0) < variant.classCount }),
                    (images.coarseLabels ?? []).allSatisfy({ $0 < 20 }), images.count > 0
                else { throw Violation(description: "accepted CIFAR data with invalid labels or sizes") }
                return true
            })
    }

    // MARK: safetensors

    private func safetensorsFormat() -> Format {
        let seeds = safetensorsSeeds
        return Format(
            name: "safetensors", fileName: "file.safetensors",
            generate: { m in mutateSafetensors(m.pick(seeds), &m) },
            run: { dir in
                let file: SafeTensorsFile
                do { file = try SafeTensorsFile.read(path: dir + "/file.safetensors") } catch { return rejected(error) }
                for (name, t) in file.tensors where t.bytes.count != t.elementCount * t.dtype.byteSize {
                    throw Violation(description: "tensor \(name): \(t.bytes.count) bytes for shape \(t.shape)")
                }
                return true
            })
    }

    // MARK: checkpoints

    private func checkpointFormat() -> Format {
        let seeds = checkpointSeeds
        return Format(
            name: "checkpoint", fileName: "ckpt.safetensors",
            generate: { m in
                let seed = m.pick(seeds)
                switch m.below(10) {
                case 0..<3: return m.mutateBytes(seed)
                case 3: return mutateSafetensors(seed, &m)
                default: return editCheckpoint(seed, &m) ?? seed
                }
            },
            run: { dir in
                let path = dir + "/ckpt.safetensors"
                let contents: Checkpoint.Contents
                do { contents = try Checkpoint.read(path) } catch { return rejected(error) }
                let problems = contents.config.problems() + contents.progress.problems(config: contents.config)
                guard problems.isEmpty else { throw Violation(description: "accepted: \(problems)") }
                // A configuration that passed must build; only small ones are built here (a width of
                // maxWidth is valid and would take gigabytes).
                let model = contents.config.model
                let widest = model.widths.max() ?? 0
                guard 40 * 9 * widest * widest + model.classes * widest <= 4_000_000 else { return true }
                let network = model.makeNetwork(batch: 2)
                let optimizer = Optimizer(config: contents.config, network: network)
                do { try Checkpoint.apply(contents, to: network, optimizer: optimizer, model: model) } catch {
                    return rejected(error)
                }
                return true
            })
    }

    // MARK: metrics and suites

    private func metricsFormat() -> Format {
        let seed = metricsSeed, reportSuite = reportSuite
        return Format(
            name: "metrics", fileName: "run-a/metrics.jsonl",
            generate: { m in
                var lines = seed.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                switch m.below(10) {
                case 0..<6:
                    let i = m.below(lines.count - 1)
                    lines[i] = m.mutateJSON(lines[i])
                case 6:
                    let i = m.below(lines.count - 1)
                    m.log.append("duplicate line \(i + 1)")
                    lines.insert(lines[i], at: m.below(lines.count))
                default:
                    return m.mutateBytes(Array(seed.utf8))
                }
                return Array(lines.joined(separator: "\n").utf8)
            },
            run: { dir in
                // The real reader, then the report over this run and a valid one.
                do { _ = try MetricsLog.read(path: dir + "/run-a/metrics.jsonl") } catch { return rejected(error) }
                try? FileManager.default.removeItem(atPath: dir + "/run-b")
                try? FileManager.default.copyItem(atPath: reportSuite + "/run-b", toPath: dir + "/run-b")
                _ = ExperimentReport(suiteDirectory: URL(fileURLWithPath: dir), groups: Self.reportGroups).render()
                return true
            })
    }

    private func suiteFormat() -> Format {
        let seed = suiteSeed, reportSuite = reportSuite
        return Format(
            name: "suite", fileName: "suite.json",
            generate: { m in m.chance(0.85) ? Array(m.mutateJSON(seed).utf8) : m.mutateBytes(Array(seed.utf8)) },
            run: { dir in
                let path = dir + "/suite.json"
                let suite: ExperimentSuite
                do {
                    suite = try ExperimentSuite.decode(Data(contentsOf: URL(fileURLWithPath: path)), path: path)
                } catch {
                    return rejected(error)
                }
                _ = ExperimentReport(suiteDirectory: URL(fileURLWithPath: reportSuite), groups: suite.groups).render()
                return true
            })
    }
}

// MARK: safetensors surgery

/// Splits a safetensors file into its header JSON and data section (nil when the length is unusable).
func splitSafetensors(_ file: [UInt8]) -> (header: [UInt8], data: [UInt8])? {
    guard file.count >= 8 else { return nil }
    var n: UInt64 = 0
    for k in 0..<8 { n |= UInt64(file[k]) << (8 * UInt64(k)) }
    guard n <= UInt64(file.count - 8) else { return nil }
    return (Array(file[8..<8 + Int(n)]), Array(file[(8 + Int(n))...]))
}

/// A file from a header and data with a correct length field and, when the header holds a dcnet
/// checksum, a correct checksum: an edit then reaches the checks behind the checksum.
func reframe(header: [UInt8], data: [UInt8], pad: Bool = true) -> [UInt8] {
    var h = header
    while pad && h.count % 8 != 0 { h.append(0x20) }
    var file = Mutator.littleEndian(UInt64(h.count), 8) + h + data
    func find(_ s: String) -> Int? {
        let x = Array(s.utf8)
        guard h.count >= x.count else { return nil }
        return (0...(h.count - x.count)).first { h[$0..<$0 + x.count].elementsEqual(x) }.map { $0 + 8 + x.count }
    }
    if let at = find("\"crc32-file:"), at + 9 <= file.count, file[at + 8] == UInt8(ascii: "\"") {
        for k in 0..<8 { file[at + k] = UInt8(ascii: "0") }
        let digits = Array(hex(CRC32.checksum(file)).utf8)
        for k in 0..<8 { file[at + k] = digits[k] }
    } else if let at = find("\"crc32:"), at + 9 <= file.count, file[at + 8] == UInt8(ascii: "\"") {
        let digits = Array(hex(CRC32.checksum(data)).utf8)
        for k in 0..<8 { file[at + k] = digits[k] }
    }
    return file
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}

/// Raw damage, an extreme length field, or header/data edits behind a repaired length and checksum.
func mutateSafetensors(_ seed: [UInt8], _ m: inout Mutator) -> [UInt8] {
    guard let (header, data) = splitSafetensors(seed) else { return m.mutateBytes(seed) }
    switch m.below(10) {
    case 0..<3:
        return m.mutateBytes(seed)
    case 3:
        var file = seed
        let v = m.pick(Mutator.extremeWords(size: seed.count) + [UInt64(header.count) &- 1, UInt64(header.count) + 1])
        m.log.append("header length = \(v)")
        file.replaceSubrange(0..<8, with: Mutator.littleEndian(v, 8))
        return file
    case 4:
        let text = String(decoding: header, as: UTF8.self)
        let cut = m.below(data.count + 1)
        m.log.append("data cut to \(cut) of \(data.count)")
        return reframe(header: Array(text.utf8), data: m.chance(0.5) ? Array(data.prefix(cut)) : data + [1, 2, 3, 4])
    default:
        let text = String(decoding: header, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        return reframe(header: Array(m.mutateJSON(text).utf8), data: data, pad: m.chance(0.8))
    }
}

/// A checkpoint parsed, edited (configuration, progress, format keys, tensors) and written again
/// with a valid checksum, so the edit reaches the configuration and shape checks.
func editCheckpoint(_ seed: [UInt8], _ m: inout Mutator) -> [UInt8]? {
    guard var file = try? SafeTensorsFile.parse(seed) else { return nil }
    for _ in 0..<(1 + m.below(2)) {
        switch m.below(10) {
        case 0..<3:
            m.log.append("training:")
            file.metadata["dcnet.training"] = m.mutateJSON(file.metadata["dcnet.training"] ?? "{}")
        case 3, 4:
            m.log.append("progress:")
            file.metadata["dcnet.progress"] = m.mutateJSON(file.metadata["dcnet.progress"] ?? "{}")
        case 5:
            let key = m.pick([
                "dcnet.format", "dcnet.format_version", "dcnet.training", "dcnet.progress", "dcnet.model",
            ])
            let value = m.pick([nil, "", "1", "2", "3", "dcnet-checkpoint", "{}", "null"])
            m.log.append("metadata \(key) = \(value ?? "removed")")
            file.metadata[key] = value
        default:
            guard !file.tensors.isEmpty else { continue }
            let i = m.below(file.tensors.count)
            let (name, t) = file.tensors[i]
            switch m.below(5) {
            case 0:
                m.log.append("remove tensor \(name)")
                file.tensors.remove(at: i)
            case 1:
                m.log.append("rename tensor \(name)")
                file.tensors[i].name = name + m.pick(["x", "/", ".0"])
            case 2:
                let shape = m.pick([
                    [], [0], [1], [t.elementCount + 1], [t.elementCount, 1], t.shape.reversed(), [1 << 20],
                ])
                let count = shape.reduce(1, *)
                m.log.append("tensor \(name) shape \(t.shape) -> \(shape)")
                file.tensors[i].tensor = StoredTensor(floats: [Float](repeating: 0.5, count: count), shape: shape)
            case 3:
                m.log.append("tensor \(name) as F64")
                file.tensors[i].tensor = StoredTensor(
                    doubles: [Double](repeating: 0.5, count: t.elementCount), shape: t.shape)
            default:
                let v = m.pick([Float.nan, .infinity, -.infinity, 0, -1, .greatestFiniteMagnitude])
                m.log.append("tensor \(name) filled with \(v)")
                file.tensors[i].tensor = StoredTensor(
                    floats: [Float](repeating: v, count: t.elementCount), shape: t.shape)
            }
        }
    }
    file.checksumScope = m.chance(0.9) ? .wholeFile : .data
    return try? file.serialized()
}
