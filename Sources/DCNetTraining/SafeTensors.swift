import DCNetData
import DCNetTensor

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
    /// Copies a tensor view; shape `[n, c, h, w]`, or `shape` if given (same element count).
    public init(_ tensor: Tensor, shape: [Int]? = nil) {
        let s = tensor.shape
        self.init(copying: tensor.data, count: tensor.count, shape: shape ?? [s.n, s.c, s.h, s.w])
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

/// An error reading or writing a safetensors file; the text names the file.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case io, truncated, badHeaderLength, badJSON, badHeader, offsetsOutOfRange, checksumMismatch,
            unknownDType, dtypeMismatch, shapeMismatch, missingTensor, invalidArgument
    }
    public let kind: Kind
    public let path: String
    public let message: String
    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind; self.path = path; self.message = message
    }
    public var description: String { "\(path): \(message)" }
}

/// A safetensors file: `u64le header length N`, N bytes of JSON header (padded with spaces to
/// a multiple of 8), then the data section. Compatible with the `safetensors` Python/Rust library.
///
/// Integrity: the writer stores CRC-32 of the data section in `__metadata__` as
/// `"dcnet.checksum": "crc32:xxxxxxxx"`; the reader verifies it when present (files written by
/// other tools have none; pass `requireChecksum: true` to insist).
public struct SafeTensorsFile: Sendable {
    public static let checksumKey = "dcnet.checksum"
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

    // MARK: writing

    /// Header bytes (JSON padded to a multiple of 8) and the checksum of the data section.
    public func encodedHeader() throws -> [UInt8] {
        var seen = Set<String>()
        for (name, _) in tensors {
            guard !name.isEmpty, name != "__metadata__", seen.insert(name).inserted else {
                throw SafeTensorsError(
                    .invalidArgument, path: "safetensors", "invalid or duplicate tensor name \"\(name)\"")
            }
        }
        var crc = CRC32()
        for (_, t) in tensors { crc.update(t.bytes) }
        var meta = metadata
        meta[Self.checksumKey] = "crc32:" + hex8(crc.value)

        var json = "{\"__metadata__\":{"
        json += meta.keys.sorted().map { "\(jsonString($0)):\(jsonString(meta[$0]!))" }.joined(separator: ",")
        json += "}"
        var offset = 0
        for (name, t) in tensors {
            let end = offset + t.bytes.count
            json +=
                ",\(jsonString(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        return header
    }

    /// The whole file as bytes.
    public func serialized() throws -> [UInt8] {
        let header = try encodedHeader()
        var out = [UInt8](); out.reserveCapacity(8 + header.count + tensors.reduce(0) { $0 + $1.tensor.bytes.count })
        var n = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out += header
        for (_, t) in tensors { out += t.bytes }
        return out
    }

    /// Writes atomically: to a temporary file in the same directory, fsync, rename over `path`,
    /// fsync the directory. On any error (including ENOSPC) the temporary file is removed, an
    /// error is thrown and an existing file at `path` is left untouched.
    public func write(to path: String) throws {
        let header = try encodedHeader()
        let dir: String, base: String
        if let slash = path.lastIndex(of: "/") {
            dir = slash == path.startIndex ? "/" : String(path[..<slash]);
            base = String(path[path.index(after: slash)...])
        } else {
            dir = "."; base = path
        }
        guard !base.isEmpty else { throw SafeTensorsError(.invalidArgument, path: path, "not a file path") }
        let tmp = (dir == "/" ? "" : dir) + "/.\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SafeTensorsError(.io, path: path, "cannot create temporary file \(tmp): \(errText())")
        }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        do {
            var n = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &n) { try writeAll(fd, $0, path: path) }
            try header.withUnsafeBytes { try writeAll(fd, $0, path: path) }
            for (_, t) in tensors { try t.bytes.withUnsafeBytes { try writeAll(fd, $0, path: path) } }
            guard fsync(fd) == 0 else { throw SafeTensorsError(.io, path: path, "fsync failed: \(errText())") }
        } catch {
            close(fd); throw error
        }
        guard close(fd) == 0 else { throw SafeTensorsError(.io, path: path, "close failed: \(errText())") }
        guard rename(tmp, path) == 0 else {
            throw SafeTensorsError(.io, path: path, "rename from \(tmp) failed: \(errText())")
        }
        ok = true
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            let rc = fsync(dfd); let e = errno
            close(dfd)
            // EINVAL: file systems that cannot sync directories; the rename itself succeeded.
            if rc != 0 && e != EINVAL {
                throw SafeTensorsError(.io, path: path, "fsync of directory \(dir) failed: \(errText(e))")
            }
        }
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
        let root: JSON
        do { root = try JSONParser.parse(bytes[8..<8 + n]) } catch let e as JSONParser.Failure {
            throw fail(.badJSON, "bad JSON header: \(e.message) at header byte \(e.offset)")
        }
        guard case let .object(entries) = root else { throw fail(.badJSON, "bad JSON header: not an object") }
        let dataStart = 8 + n, dataLen = bytes.count - dataStart

        var metadata: [String: String] = [:]
        var tensors: [(name: String, tensor: StoredTensor)] = []
        var ranges: [(Int, Int, String)] = []
        var pending: [(String, SafeTensorsDType, [Int], Int, Int)] = []
        var seen = Set<String>()
        for (key, value) in entries {
            guard seen.insert(key).inserted else { throw fail(.badHeader, "duplicate key \"\(key)\" in header") }
            if key == "__metadata__" {
                guard case let .object(kv) = value else { throw fail(.badHeader, "__metadata__ is not an object") }
                for (k, v) in kv {
                    guard case let .string(s) = v else {
                        throw fail(.badHeader, "__metadata__[\"\(k)\"] is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard case let .object(fields) = value else {
                throw fail(.badHeader, "tensor \"\(key)\": entry is not an object")
            }
            func field(_ f: String) -> JSON? { fields.first { $0.0 == f }?.1 }
            guard case let .string(dt)? = field("dtype") else {
                throw fail(.badHeader, "tensor \"\(key)\": missing dtype")
            }
            guard let dtype = SafeTensorsDType(rawValue: dt) else {
                throw fail(
                    .unknownDType,
                    "tensor \"\(key)\": unknown or unsupported dtype \"\(dt)\" (supported: F32, F64, I64, U8)")
            }
            guard case let .array(shapeJ)? = field("shape"), let shape = intArray(shapeJ), shape.allSatisfy({ $0 >= 0 })
            else {
                throw fail(.badHeader, "tensor \"\(key)\": missing or invalid shape")
            }
            guard case let .array(offJ)? = field("data_offsets"), let off = intArray(offJ), off.count == 2 else {
                throw fail(.badHeader, "tensor \"\(key)\": missing or invalid data_offsets")
            }
            let (b, e) = (off[0], off[1])
            guard b >= 0, b <= e else {
                throw fail(.offsetsOutOfRange, "tensor \"\(key)\": invalid data_offsets [\(b), \(e)]")
            }
            var elems = 1
            for d in shape {
                let (m, o) = elems.multipliedReportingOverflow(by: d)
                guard !o else { throw fail(.badHeader, "tensor \"\(key)\": shape \(shape) overflows") }
                elems = m
            }
            guard elems * dtype.byteSize == e - b else {
                throw fail(
                    .badHeader,
                    "tensor \"\(key)\": \(dtype.rawValue) shape \(shape) needs \(elems * dtype.byteSize) bytes but data_offsets [\(b), \(e)] span \(e - b)"
                )
            }
            ranges.append((b, e, key))
            pending.append((key, dtype, shape, b, e))
        }
        // Like the reference implementation: tensors tile the data section without gaps or overlap.
        ranges.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        var expect = 0
        for (b, e, name) in ranges {
            guard b == expect else {
                throw fail(
                    .offsetsOutOfRange,
                    "tensor \"\(name)\": data_offsets [\(b), \(e)] start at \(b), expected \(expect) (gap or overlap)")
            }
            expect = e
        }
        if expect > dataLen {
            // Consistent header but the data stops early.
            if let (_, e, name) = ranges.first(where: { $0.1 > dataLen }) {
                throw fail(
                    .truncated,
                    "truncated file: tensors need \(expect) data bytes, file has \(dataLen) (tensor \"\(name)\" ends at \(e); file \(bytes.count) bytes)"
                )
            }
        }
        guard expect == dataLen else {
            throw fail(
                .offsetsOutOfRange, "tensors cover \(expect) bytes but the data section has \(dataLen) (trailing bytes)"
            )
        }
        for (key, dtype, shape, b, e) in pending {
            tensors.append(
                (key, StoredTensor(dtype: dtype, shape: shape, bytes: Array(bytes[dataStart + b..<dataStart + e]))))
        }
        if let stored = metadata[checksumKey] {
            let actual = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[dataStart...])) }
            guard stored.lowercased() == "crc32:" + hex8(actual) else {
                throw fail(
                    .checksumMismatch,
                    "checksum mismatch: header says \(stored), data has crc32:\(hex8(actual)) (file damaged)")
            }
            metadata[checksumKey] = nil
        } else if requireChecksum {
            throw fail(.checksumMismatch, "no \(checksumKey) in __metadata__ (not written by dcnet, or header damaged)")
        }
        return SafeTensorsFile(metadata: metadata, tensors: tensors)
    }
}

// MARK: helpers

private func errText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

private func writeAll(_ fd: Int32, _ buf: UnsafeRawBufferPointer, path: String) throws {
    guard var p = buf.baseAddress else { return }
    var left = buf.count
    while left > 0 {
        let n = Glibc.write(fd, p, min(left, 1 << 30))
        if n < 0 {
            if errno == EINTR { continue }
            throw SafeTensorsError(.io, path: path, "write failed: \(errText())")
        }
        if n == 0 { throw SafeTensorsError(.io, path: path, "write returned 0 (disk full?)") }
        p += n; left -= n
    }
}

private func hex8(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}

private func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20:
            let h = String(u.value, radix: 16); out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}

private func intArray(_ a: [JSON]) -> [Int]? {
    var r: [Int] = []
    for v in a { guard case let .number(s) = v, let i = Int(s) else { return nil }; r.append(i) }
    return r
}

/// Minimal JSON value (objects keep key order; numbers kept as text).
enum JSON: Equatable {
    case object([(String, JSON)]), array([JSON]), string(String), number(String), bool(Bool), null
    static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.array(x), .array(y)): return x == y
        case let (.string(x), .string(y)), let (.number(x), .number(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }
}

/// A small strict JSON parser (RFC 8259) for safetensors headers.
struct JSONParser {
    struct Failure: Error { let message: String; let offset: Int }
    let b: [UInt8]
    var i = 0
    var depth = 0

    static func parse(_ bytes: ArraySlice<UInt8>) throws -> JSON {
        var p = JSONParser(b: Array(bytes))
        p.skipWS()
        let v = try p.value()
        p.skipWS()
        guard p.i == p.b.count else { throw Failure(message: "unexpected data after the JSON value", offset: p.i) }
        return v
    }
    func fail(_ m: String) -> Failure { Failure(message: m, offset: i) }
    mutating func skipWS() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }
    mutating func expect(_ c: UInt8) throws {
        guard i < b.count, b[i] == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
        i += 1
    }
    mutating func value() throws -> JSON {
        guard i < b.count else { throw fail("unexpected end of header") }
        switch b[i] {
        case UInt8(ascii: "{"):
            depth += 1; defer { depth -= 1 }
            guard depth < 64 else { throw fail("nesting too deep") }
            i += 1; skipWS()
            var entries: [(String, JSON)] = []
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(entries) }
            while true {
                skipWS()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let k = try string()
                skipWS(); try expect(UInt8(ascii: ":")); skipWS()
                entries.append((k, try value()))
                skipWS()
                guard i < b.count else { throw fail("unexpected end of header in object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(entries) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            depth += 1; defer { depth -= 1 }
            guard depth < 64 else { throw fail("nesting too deep") }
            i += 1; skipWS()
            var items: [JSON] = []
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipWS(); items.append(try value()); skipWS()
                guard i < b.count else { throw fail("unexpected end of header in array") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character 0x\(String(b[i], radix: 16))")
        }
    }
    mutating func literal(_ s: String) throws {
        let u = Array(s.utf8)
        guard i + u.count <= b.count, Array(b[i..<i + u.count]) == u else { throw fail("invalid literal") }
        i += u.count
    }
    mutating func number() throws -> String {
        let start = i
        if b[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int { let s = i; while i < b.count, (48...57).contains(b[i]) { i += 1 }; return i - s }
        guard digits() > 0 else { throw fail("invalid number") }
        if i < b.count, b[i] == UInt8(ascii: ".") { i += 1; guard digits() > 0 else { throw fail("invalid number") } }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("invalid number") }
        }
        return String(decoding: b[start..<i], as: UTF8.self)
    }
    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count else { throw fail("bad \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]; i += 1
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 65...70: d = UInt32(c - 55)
            case 97...102: d = UInt32(c - 87)
            default: throw fail("bad \\u escape")
            }
            v = v << 4 | d
        }
        return v
    }
    mutating func string() throws -> String {
        i += 1  // opening quote
        var out = [UInt8]()
        while true {
            guard i < b.count else { throw fail("unterminated string") }
            let c = b[i]; i += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard i < b.count else { throw fail("unterminated escape") }
            let e = b[i]; i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate")
                    }
                    i += 2
                    let lo = try hex4()
                    guard (0xDC00...0xDFFF).contains(lo) else { throw fail("bad surrogate pair") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (lo - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid code point") }
                out += Array(String(Character(u)).utf8)
            default: throw fail("invalid escape")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
        return s
    }
}
