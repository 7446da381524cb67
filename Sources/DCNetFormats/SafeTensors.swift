import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if _endian(big)
#error("SafeTensors.swift assumes a little-endian host (the format is little-endian)")
#endif

/// Element types stored in safetensors files (the subset the trainer needs).
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f32 = "F32", f64 = "F64", i64 = "I64", u8 = "U8"
    public var byteSize: Int {
        switch self {
        case .f32: 4;
        case .f64: 8;
        case .i64: 8;
        case .u8: 1
        }
    }
}

/// One tensor: dtype, shape and its raw little-endian bytes (row-major, C order).
public struct StoredTensor: Sendable, Equatable {
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    public var bytes: [UInt8]

    public var elementCount: Int { shape.reduce(1, *) }

    public init(dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(
            bytes.count == shape.reduce(1, *) * dtype.byteSize,
            "\(bytes.count) bytes do not match \(dtype.rawValue) shape \(shape)")
        self.dtype = dtype; self.shape = shape; self.bytes = bytes
    }
    static func raw<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    public init(floats: [Float], shape: [Int]? = nil) {
        self.init(dtype: .f32, shape: shape ?? [floats.count], bytes: Self.raw(floats))
    }
    public init(doubles: [Double], shape: [Int]? = nil) {
        self.init(dtype: .f64, shape: shape ?? [doubles.count], bytes: Self.raw(doubles))
    }
    public init(int64s: [Int64], shape: [Int]? = nil) {
        self.init(dtype: .i64, shape: shape ?? [int64s.count], bytes: Self.raw(int64s))
    }
    public init(uint8s: [UInt8], shape: [Int]? = nil) {
        self.init(dtype: .u8, shape: shape ?? [uint8s.count], bytes: uint8s)
    }
    /// Copies `count` floats from memory (e.g. an arena-owned parameter).
    public init(copying pointer: UnsafePointer<Float>, count: Int, shape: [Int]? = nil) {
        self.init(
            dtype: .f32, shape: shape ?? [count],
            bytes: Array(UnsafeRawBufferPointer(start: pointer, count: count * 4)))
    }

    func values<T>(_ want: SafeTensorsDType, _: T.Type) -> [T]? {
        guard dtype == want else { return nil }
        let n = bytes.count / MemoryLayout<T>.size
        return [T](unsafeUninitializedCapacity: n) { buf, done in
            bytes.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: src)
            }
            done = n
        }
    }
    /// The values if the dtype matches, else nil.
    public var floats: [Float]? { values(.f32, Float.self) }
    public var doubles: [Double]? { values(.f64, Double.self) }
    public var int64s: [Int64]? { values(.i64, Int64.self) }
    public var uint8s: [UInt8]? { dtype == .u8 ? bytes : nil }

    /// Copies F32 data into memory of exactly `count` floats.
    public func copyFloats(into pointer: UnsafeMutablePointer<Float>, count: Int, name: String = "tensor") throws {
        guard dtype == .f32 else {
            throw SafeTensorsError(.dtypeMismatch, path: name, "expected F32, stored as \(dtype.rawValue)")
        }
        guard elementCount == count else {
            throw SafeTensorsError(
                .shapeMismatch, path: name, "expected \(count) elements, stored shape \(shape) has \(elementCount)")
        }
        bytes.withUnsafeBytes { src in
            UnsafeMutableRawPointer(pointer).copyMemory(from: src.baseAddress!, byteCount: count * 4)
        }
    }
}

/// What can be wrong with a safetensors file.
public enum SafeTensorsErrorKind: String, Hashable, Sendable {
    case io, truncated, badHeaderLength, badJSON, badHeader, offsetsOutOfRange, checksumMismatch,
        unknownDType, dtypeMismatch, shapeMismatch, missingTensor, invalidArgument
}
/// An error reading or writing a safetensors file; the text names the file.
public typealias SafeTensorsError = FileError<SafeTensorsErrorKind>

/// A safetensors file: `u64le header length N`, N bytes of JSON header (padded with spaces to
/// a multiple of 8), then the data section. Compatible with the `safetensors` Python/Rust library.
///
/// Integrity: the writer stores a CRC-32 in `__metadata__` as `"dcnet.checksum"`, and the reader
/// verifies it when present (files written by other tools have none; pass `requireChecksum: true`
/// to insist). `"crc32-file:xxxxxxxx"` covers every byte of the file (length, header with these 8
/// digits read as zeros, data); the older `"crc32:xxxxxxxx"` covers the data section only, so an
/// edited header or metadata goes unnoticed.
public struct SafeTensorsFile: Sendable {
    public static let checksumKey = "dcnet.checksum"
    /// What the checksum covers.
    public enum ChecksumScope: String, Sendable {
        case data, wholeFile
        var prefix: String { self == .data ? "crc32:" : "crc32-file:" }
    }
    /// Written: the scope of the checksum the writer stores (whole file unless set). Read: the
    /// scope of the checksum that was verified, nil when the file had none.
    public var checksumScope: ChecksumScope? = .wholeFile
    /// Largest header accepted (same limit as the reference implementation).
    public static let maxHeaderBytes = 100_000_000

    /// String metadata (`__metadata__`). The checksum key is managed by write/read.
    public var metadata: [String: String]
    /// Tensors in file order (written in exactly this order).
    public var tensors: [(name: String, tensor: StoredTensor)]

    public init(metadata: [String: String] = [:], tensors: [(name: String, tensor: StoredTensor)] = []) {
        self.metadata = metadata; self.tensors = tensors
    }

    public mutating func append(_ name: String, _ tensor: StoredTensor) { tensors.append((name, tensor)) }
    public subscript(name: String) -> StoredTensor? { tensors.first { $0.name == name }?.tensor }
    public var names: [String] { tensors.map(\.name) }

    /// A tensor that must exist (error names the file context `path`).
    public func require(_ name: String, path: String = "safetensors") throws -> StoredTensor {
        guard let t = self[name] else {
            throw SafeTensorsError(.missingTensor, path: path, "no tensor named \"\(name)\"")
        }
        return t
    }

    // MARK: reading

    public static func read(path: String, requireChecksum: Bool = false) throws -> SafeTensorsFile {
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path) } catch let e as DataError {
            throw SafeTensorsError(.io, path: path, e.message)
        }
        return try parse(bytes, path: path, requireChecksum: requireChecksum)
    }

    /// Parses and validates a whole file held in memory. `path` is used in error messages.
    public static func parse(_ bytes: [UInt8], path: String = "<memory>", requireChecksum: Bool = false) throws
        -> SafeTensorsFile
    {
        func fail(_ k: SafeTensorsError.Kind, _ m: String) -> SafeTensorsError { SafeTensorsError(k, path: path, m) }
        let (header, dataStart) = try decodeHeader(bytes, fail: fail)
        // JSON objects are unordered: the tensors come back in the order of their data.
        let entries = try header.tensors.map { try TensorEntry($0, fail: fail) }
            .sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        try checkTiling(entries, dataLength: bytes.count - dataStart, fileLength: bytes.count, fail: fail)
        let tensors = entries.map { t in
            (
                t.name,
                StoredTensor(
                    dtype: t.dtype, shape: t.shape, bytes: Array(bytes[dataStart + t.begin..<dataStart + t.end]))
            )
        }
        var metadata = header.metadata
        var scope: ChecksumScope?
        if let stored = metadata[checksumKey] {
            scope = try verifyChecksum(stored, bytes, headerEnd: dataStart, fail: fail)
            metadata[checksumKey] = nil
        } else if requireChecksum {
            throw fail(.checksumMismatch, "no \(checksumKey) in __metadata__ (not written by dcnet, or header damaged)")
        }
        var file = SafeTensorsFile(metadata: metadata, tensors: tensors)
        file.checksumScope = scope
        return file
    }

    /// The header length and JSON header; returns the header and where the data section starts.
    private static func decodeHeader(
        _ bytes: [UInt8], fail: (SafeTensorsError.Kind, String) -> SafeTensorsError
    ) throws -> (Header, Int) {
        guard bytes.count >= 8 else {
            throw fail(.truncated, "truncated file: \(bytes.count) bytes, need at least 8 for the header length")
        }
        var n64: UInt64 = 0
        for k in 0..<8 { n64 |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard n64 >= 2, n64 <= UInt64(maxHeaderBytes) else {
            throw fail(.badHeaderLength, "bad header length \(n64) (file is \(bytes.count) bytes)")
        }
        let n = Int(n64)
        guard 8 + n <= bytes.count else {
            throw fail(.truncated, "truncated file: header length \(n) but only \(bytes.count - 8) bytes follow")
        }
        do {
            return (try JSONDecoder().decode(Header.self, from: Data(bytes[8..<8 + n])), 8 + n)
        } catch let e as HeaderError {
            throw fail(.badHeader, e.message)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            let detail = (context.underlyingError.map { "\($0)" } ?? context.debugDescription)
            throw fail(.badJSON, "bad JSON header: \(detail)")
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw fail(.badJSON, "bad JSON header: not an object")
        } catch {
            throw fail(.badJSON, "bad JSON header: \(error)")
        }
    }

    /// One header entry, checked: a supported dtype, a shape whose size is what its offsets span.
    private struct TensorEntry {
        let name: String, dtype: SafeTensorsDType, shape: [Int], begin: Int, end: Int

        init(_ entry: Header.Entry, fail: (SafeTensorsError.Kind, String) -> SafeTensorsError) throws {
            let key = entry.name
            guard let dt = entry.dtype else { throw fail(.badHeader, "tensor \"\(key)\": missing dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dt) else {
                throw fail(
                    .unknownDType,
                    "tensor \"\(key)\": unknown or unsupported dtype \"\(dt)\" (supported: F32, F64, I64, U8)")
            }
            guard let shape = entry.shape, shape.allSatisfy({ $0 >= 0 }) else {
                throw fail(.badHeader, "tensor \"\(key)\": missing or invalid shape")
            }
            guard let off = entry.offsets, off.count == 2 else {
                throw fail(.badHeader, "tensor \"\(key)\": missing or invalid data_offsets")
            }
            let (b, e) = (off[0], off[1])
            guard b >= 0, b <= e else {
                throw fail(.offsetsOutOfRange, "tensor \"\(key)\": invalid data_offsets [\(b), \(e)]")
            }
            var size = dtype.byteSize
            for d in shape {
                let (m, o) = size.multipliedReportingOverflow(by: d)
                guard !o else { throw fail(.badHeader, "tensor \"\(key)\": shape \(shape) overflows") }
                size = m
            }
            guard size == e - b else {
                throw fail(
                    .badHeader,
                    "tensor \"\(key)\": \(dtype.rawValue) shape \(shape) needs \(size) bytes "
                        + "but data_offsets [\(b), \(e)] span \(e - b)")
            }
            (name, self.dtype, self.shape, begin, end) = (key, dtype, shape, b, e)
        }
    }

    /// Like the reference implementation: the tensors (sorted by offsets) tile the data section
    /// without gaps or overlap.
    private static func checkTiling(
        _ entries: [TensorEntry], dataLength: Int, fileLength: Int,
        fail: (SafeTensorsError.Kind, String) -> SafeTensorsError
    ) throws {
        var expect = 0
        for t in entries {
            guard t.begin == expect else {
                throw fail(
                    .offsetsOutOfRange,
                    "tensor \"\(t.name)\": data_offsets [\(t.begin), \(t.end)] start at \(t.begin), expected \(expect) "
                        + "(gap or overlap)")
            }
            expect = t.end
        }
        // A consistent header whose data stops early.
        if expect > dataLength, let short = entries.first(where: { $0.end > dataLength }) {
            throw fail(
                .truncated,
                "truncated file: tensors need \(expect) data bytes, file has \(dataLength) (tensor \"\(short.name)\" "
                    + "ends at \(short.end); file \(fileLength) bytes)")
        }
        guard expect == dataLength else {
            throw fail(
                .offsetsOutOfRange,
                "tensors cover \(expect) bytes but the data section has \(dataLength) (trailing bytes)")
        }
    }

    /// Checks the stored checksum against the bytes and returns what it covers.
    private static func verifyChecksum(
        _ stored: String, _ bytes: [UInt8], headerEnd: Int, fail: (SafeTensorsError.Kind, String) -> SafeTensorsError
    ) throws -> ChecksumScope {
        let value = stored.lowercased()
        if value.hasPrefix(ChecksumScope.wholeFile.prefix) {
            // The stored text appears once in the header, as a JSON string; its digits count as zeros.
            let quoted = Array("\"\(stored)\"".utf8)
            let header = bytes[8..<headerEnd]
            let found = occurrences(of: quoted, in: header)
            guard found.count == 1 else {
                throw fail(.checksumMismatch, "checksum \(stored) appears \(found.count) times in the header (damaged)")
            }
            var crc = CRC32()
            let digitsStart = found[0] + quoted.count - 9
            bytes.withUnsafeBytes { raw in
                crc.update(UnsafeRawBufferPointer(rebasing: raw[..<digitsStart]))
                crc.update(Array(repeating: UInt8(ascii: "0"), count: 8))
                crc.update(UnsafeRawBufferPointer(rebasing: raw[(digitsStart + 8)...]))
            }
            guard value == ChecksumScope.wholeFile.prefix + hex8(crc.value) else {
                throw fail(
                    .checksumMismatch,
                    "checksum mismatch: header says \(stored), file has crc32-file:\(hex8(crc.value)) (file damaged)")
            }
            return .wholeFile
        }
        let actual = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[headerEnd...])) }
        guard value == ChecksumScope.data.prefix + hex8(actual) else {
            throw fail(
                .checksumMismatch,
                "checksum mismatch: header says \(stored), data has crc32:\(hex8(actual)) (file damaged)")
        }
        return .data
    }
}

/// Start offsets (absolute indices of `haystack`) of every occurrence of `needle`.
func occurrences(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> [Int] {
    guard !needle.isEmpty, haystack.count >= needle.count else { return [] }
    var found: [Int] = []
    var i = haystack.startIndex
    while i <= haystack.endIndex - needle.count {
        if haystack[i] == needle[0] && haystack[i..<i + needle.count].elementsEqual(needle) { found.append(i) }
        i += 1
    }
    return found
}

// MARK: helpers

/// The header as JSON: `"__metadata__"` (string to string) and one entry per tensor. The fields of a
/// tensor entry are optional here so that a missing or mistyped field is reported by name.
private struct Header: Decodable {
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
    struct Entry {
        let name: String
        let dtype: String?
        let shape: [Int]?
        let offsets: [Int]?
    }
    var metadata: [String: String] = [:]
    var tensors: [Entry] = []

    init(from decoder: Decoder) throws {
        let root = try decoder.container(keyedBy: Key.self)
        for key in root.allKeys {
            if key.stringValue == "__metadata__" {
                guard let meta = try? root.nestedContainer(keyedBy: Key.self, forKey: key) else {
                    throw HeaderError(message: "__metadata__ is not an object")
                }
                for k in meta.allKeys {
                    guard let v = try? meta.decode(String.self, forKey: k) else {
                        throw HeaderError(message: "__metadata__[\"\(k.stringValue)\"] is not a string")
                    }
                    metadata[k.stringValue] = v
                }
                continue
            }
            guard let fields = try? root.nestedContainer(keyedBy: Key.self, forKey: key) else {
                throw HeaderError(message: "tensor \"\(key.stringValue)\": entry is not an object")
            }
            tensors.append(
                Entry(
                    name: key.stringValue,
                    dtype: try? fields.decode(String.self, forKey: Key("dtype")),
                    shape: try? fields.decode([Int].self, forKey: Key("shape")),
                    offsets: try? fields.decode([Int].self, forKey: Key("data_offsets"))))
        }
    }
}

private struct HeaderError: Error {
    let message: String
}
