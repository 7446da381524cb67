import Foundation

// TensorBoard event files, written by hand rather than with swift-protobuf: a scalar needs three
// small messages (Event, Summary, Summary.Value) of which we write five fields, and generated code
// plus a runtime dependency would be far more than the encoder below. The tests read our files
// with the `tensorboard` package's own reader and serve them with a real TensorBoard server.
//
// File: a sequence of TFRecords, each `uint64 length, uint32 masked CRC-32C(length), data,
// uint32 masked CRC-32C(data)`, little-endian. The first record is an Event with `file_version`
// "brain.Event:2"; each later one an Event with wall time, step and a Summary of scalars.

/// CRC-32C (Castagnoli), as TFRecord framing uses it, with TensorFlow's mask.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TensorFlow masks stored CRCs so that a CRC of data that itself holds CRCs stays robust.
    static func masked<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// The protobuf wire format, only as far as an Event of scalars needs it.
private struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
    mutating func key(_ field: Int, wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }
    mutating func double(_ field: Int, _ value: Double) {
        key(field, wireType: 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func float(_ field: Int, _ value: Float) {
        key(field, wireType: 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func int64(_ field: Int, _ value: Int64) {
        key(field, wireType: 0)
        varint(UInt64(bitPattern: value))
    }
    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, wireType: 2)
        varint(UInt64(value.count))
        bytes += value
    }
}

/// One scalar of a TensorBoard run.
public struct TensorBoardScalar: Sendable, Equatable {
    public var tag: String
    public var step: Int
    public var value: Double
    public var wallTime: Double

    public init(tag: String, step: Int, value: Double, wallTime: Double) {
        self.tag = tag; self.step = step; self.value = value; self.wallTime = wallTime
    }

    /// The scalars a metrics record stands for: what `train --tensorboard` writes while it trains and
    /// `dcnet-dist tensorboard` writes from a finished run's metrics file, so the two agree.
    /// `wallTime` is used for every scalar (a metrics record carries no time of its own).
    public static func scalars(of record: MetricsRecord, wallTime: Double) -> [TensorBoardScalar] {
        var out: [TensorBoardScalar] = []
        func add(_ tag: String, _ step: Int?, _ value: Double?) {
            guard let step, let value, value.isFinite else { return }
            out.append(TensorBoardScalar(tag: tag, step: step, value: value, wallTime: wallTime))
        }
        switch record {
        case .progress(let p):
            add("train/loss", p.step, p.loss)
            add("train/accuracy", p.step, p.accuracy)
            add("train/learning_rate", p.step, p.learningRate)
            add("speed/images_per_second", p.step, p.imagesPerSecond)
            add("speed/exposed_communication_share", p.step, p.exposedCommunicationShare)
            add("speed/slowest_rank_excess", p.step, p.slowestExcess)
        case .epoch(let e):
            let step = e.step ?? e.epoch
            add("epoch/train_loss", step, e.trainLoss)
            add("epoch/train_accuracy", step, e.trainAccuracy)
            add("epoch/validation_loss", step, e.validationLoss)
            add("epoch/validation_accuracy", step, e.validationAccuracy)
            add("epoch/test_loss", step, e.testLoss)
            add("epoch/test_accuracy", step, e.testAccuracy)
            add("epoch/learning_rate", step, e.learningRate)
            add("epoch/images_per_second", step, e.imagesPerSecond)
            for (layer, rho) in (e.operatorRadius ?? [:]).sorted(by: { $0.key < $1.key }) {
                add("operator_radius/\(layer)", step, rho)
            }
            for (layer, m) in (e.patchNorm ?? [:]).sorted(by: { $0.key < $1.key }) {
                add("patch_norm/\(layer)", step, m)
            }
        case .evaluation(let v):
            add("epoch/test_loss", v.step, v.testLoss)
            add("epoch/test_accuracy", v.step, v.testAccuracy)
        case .config, .attack, .unknown:
            break
        }
        return out
    }
}

/// Why an event file cannot be written or read; names the file.
public struct TensorBoardError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// An event file being written. Each scalar is a record written with one `write` call, so a run
/// killed mid-write leaves at most one torn record at the end, which readers (ours and
/// TensorBoard's) stop before.
public final class TensorBoardEventFile {
    public let path: String
    private let fd: Int32

    /// Creates `directory` if needed and a new event file in it (TensorBoard reads every
    /// `*tfevents*` file of a run's directory, in name order).
    public init(directory: String, wallTime: Double = Date().timeIntervalSince1970) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TensorBoardError(
                path: directory, reason: "cannot create the directory (\(error.localizedDescription))")
        }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        // Name order is time order for TensorBoard: seconds, then the pid against two files a second.
        let name = String(format: "events.out.tfevents.%010d.%@.%d", Int(wallTime), host, getpid())
        path = (directory as NSString).appendingPathComponent(name)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TensorBoardError(path: path, reason: "cannot create (\(String(cString: strerror(errno))))")
        }
        var header = ProtobufWriter()
        header.double(1, wallTime)
        header.bytes(3, Array("brain.Event:2".utf8))
        try writeRecord(header.bytes)
    }
    deinit { close(fd) }

    public func write(_ scalars: [TensorBoardScalar]) throws {
        for s in scalars {
            var value = ProtobufWriter()
            value.bytes(1, Array(s.tag.utf8))
            value.float(2, Float(s.value))
            var summary = ProtobufWriter()
            summary.bytes(1, value.bytes)
            var event = ProtobufWriter()
            event.double(1, s.wallTime)
            event.int64(2, Int64(s.step))
            event.bytes(5, summary.bytes)
            try writeRecord(event.bytes)
        }
    }

    private func writeRecord(_ data: [UInt8]) throws {
        var record: [UInt8] = []
        record.reserveCapacity(data.count + 16)
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        record += length
        withUnsafeBytes(of: CRC32C.masked(length).littleEndian) { record += $0 }
        record += data
        withUnsafeBytes(of: CRC32C.masked(data).littleEndian) { record += $0 }
        let written = record.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == record.count else {
            throw TensorBoardError(path: path, reason: "write failed (\(String(cString: strerror(errno))))")
        }
    }
}

/// Reading event files back: the scalars of every whole record; a torn or damaged record ends the
/// file (what is before it is kept), as TensorBoard's own reader does.
public enum TensorBoardEvents {
    public static func eventFiles(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.contains("tfevents") }.sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    /// The scalars of one file, and whether it ended in a torn or damaged record.
    public static func read(_ path: String) throws -> (scalars: [TensorBoardScalar], damagedTail: Bool) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TensorBoardError(path: path, reason: "cannot read")
        }
        let bytes = [UInt8](data)
        var scalars: [TensorBoardScalar] = []
        var offset = 0
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        while offset < bytes.count {
            guard offset + 12 <= bytes.count else { return (scalars, true) }
            let lengthBytes = bytes[offset..<(offset + 8)]
            guard u32(offset + 8) == CRC32C.masked(lengthBytes) else { return (scalars, true) }
            let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
            let start = offset + 12
            guard length <= UInt64(bytes.count - start), bytes.count - start - Int(length) >= 4 else {
                return (scalars, true)
            }
            let end = start + Int(length)
            guard u32(end) == CRC32C.masked(bytes[start..<end]) else { return (scalars, true) }
            scalars += event(bytes[start..<end])
            offset = end + 4
        }
        return (scalars, false)
    }

    /// The highest step written under each tag in `directory`'s event files.
    public static func lastSteps(in directory: String) throws -> [String: Int] {
        var last: [String: Int] = [:]
        for file in eventFiles(in: directory) {
            for s in try read(file).scalars { last[s.tag] = max(last[s.tag] ?? .min, s.step) }
        }
        return last
    }

    /// The scalars of one Event message (none for the file-version header).
    private static func event(_ bytes: ArraySlice<UInt8>) -> [TensorBoardScalar] {
        var wallTime = 0.0, step = 0
        var values: [(String, Float)] = []
        for (field, payload) in fields(bytes) {
            switch (field, payload) {
            case (1, .fixed64(let v)): wallTime = Double(bitPattern: v)
            case (2, .varint(let v)): step = Int(Int64(bitPattern: v))
            case (5, .bytes(let summary)):
                for case (1, .bytes(let value)) in fields(summary) {
                    var tag = "", simple: Float?
                    for (f, p) in fields(value) {
                        if f == 1, case .bytes(let t) = p { tag = String(decoding: t, as: UTF8.self) }
                        if f == 2, case .fixed32(let v) = p { simple = Float(bitPattern: v) }
                    }
                    if let simple { values.append((tag, simple)) }
                }
            default: break
            }
        }
        return values.map { TensorBoardScalar(tag: $0.0, step: step, value: Double($0.1), wallTime: wallTime) }
    }

    private enum Payload { case varint(UInt64), fixed64(UInt64), fixed32(UInt32), bytes(ArraySlice<UInt8>) }

    /// The fields of a message; stops at the first malformed one.
    private static func fields(_ bytes: ArraySlice<UInt8>) -> [(Int, Payload)] {
        var out: [(Int, Payload)] = []
        var i = bytes.startIndex
        func varint() -> UInt64? {
            var v: UInt64 = 0, shift: UInt64 = 0
            while i < bytes.endIndex && shift < 64 {
                let b = bytes[i]; i += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
            }
            return nil
        }
        func fixed(_ n: Int) -> UInt64? {
            guard bytes.endIndex - i >= n else { return nil }
            let v = (0..<n).reduce(UInt64(0)) { $0 | UInt64(bytes[i + $1]) << (8 * UInt64($1)) }
            i += n
            return v
        }
        while i < bytes.endIndex {
            guard let key = varint() else { break }
            let field = Int(key >> 3)
            switch key & 7 {
            case 0: guard let v = varint() else { return out }; out.append((field, .varint(v)))
            case 1: guard let v = fixed(8) else { return out }; out.append((field, .fixed64(v)))
            case 5: guard let v = fixed(4) else { return out }; out.append((field, .fixed32(UInt32(v))))
            case 2:
                guard let n = varint(), n <= UInt64(bytes.endIndex - i) else { return out }
                out.append((field, .bytes(bytes[i..<(i + Int(n))])))
                i += Int(n)
            default: return out
            }
        }
        return out
    }
}

/// A TensorBoard run fed with metrics records: the live sink of `train --tensorboard` and the
/// converter of `dcnet-dist tensorboard`. A resumed run appends a new event file to the same
/// directory and skips the steps the earlier files already hold (the resumed steps recompute them
/// exactly), so TensorBoard shows no step twice.
public final class TensorBoardRun {
    public let directory: String
    private var file: TensorBoardEventFile?
    private var lastStep: [String: Int]

    /// `resuming`: the directory may hold this run's earlier files; otherwise it must hold none, so
    /// two runs are never mixed into one.
    public init(directory: String, resuming: Bool) throws {
        self.directory = directory
        let existing = TensorBoardEvents.eventFiles(in: directory)
        if !resuming, let first = existing.first {
            throw TensorBoardError(
                path: directory,
                reason: "already holds a TensorBoard run (\((first as NSString).lastPathComponent)); choose another "
                    + "directory, remove it, or pass --resume to continue that run")
        }
        lastStep = try TensorBoardEvents.lastSteps(in: directory)
    }

    public func append(_ records: [MetricsRecord], wallTime: Double = Date().timeIntervalSince1970) throws {
        let fresh = records.flatMap { TensorBoardScalar.scalars(of: $0, wallTime: wallTime) }.filter { s in
            s.step > (lastStep[s.tag] ?? .min)
        }
        guard !fresh.isEmpty else { return }
        if file == nil { file = try TensorBoardEventFile(directory: directory, wallTime: wallTime) }
        try file!.write(fresh)
        for s in fresh { lastStep[s.tag] = max(lastStep[s.tag] ?? .min, s.step) }
    }
}
