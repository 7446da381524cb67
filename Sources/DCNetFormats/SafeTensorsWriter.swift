import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Writing safetensors files: the header (JSON padded to 8 bytes, with the checksum of the data in
// the metadata) and an atomic write of the whole file.
extension SafeTensorsFile {
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
        let scope = checksumScope ?? .wholeFile
        var dataCRC = CRC32()
        if scope == .data { for (_, t) in tensors { dataCRC.update(t.bytes) } }
        let placeholder = scope.prefix + String(repeating: "0", count: 8)
        var meta = metadata
        meta[Self.checksumKey] = scope == .data ? scope.prefix + hex8(dataCRC.value) : placeholder

        var json = "{\"__metadata__\":{"
        json += meta.keys.sorted().map { "\(JSONText.quoted($0)):\(JSONText.quoted(meta[$0]!))" }.joined(separator: ",")
        json += "}"
        var offset = 0
        for (name, t) in tensors {
            let end = offset + t.bytes.count
            json +=
                ",\(JSONText.quoted(name)):{\"dtype\":\"\(t.dtype.rawValue)\","
                + "\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
                + "\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        if scope == .wholeFile {
            // The CRC of the file as written, with the checksum's digits as zeros; then the digits.
            var crc = CRC32()
            var n = UInt64(header.count).littleEndian
            withUnsafeBytes(of: &n) { crc.update($0) }
            crc.update(header)
            for (_, t) in tensors { crc.update(t.bytes) }
            let quoted = Array("\"\(placeholder)\"".utf8)
            guard let at = occurrences(of: quoted, in: header[...]).first else {
                throw SafeTensorsError(.invalidArgument, path: "safetensors", "checksum placeholder not in header")
            }
            let digits = Array(hex8(crc.value).utf8)
            for k in 0..<8 { header[at + quoted.count - 9 + k] = digits[k] }
        }
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

    /// Writes atomically (`AtomicFile`): the file appears at `path` complete or not at all, and an
    /// existing file there is left untouched by any failure (a full disk among them).
    public func write(to path: String) throws {
        let header = try encodedHeader()
        try AtomicFile.write(to: path) { sink in
            var n = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &n) { try sink.write($0) }
            try sink.write(header)
            for (_, t) in tensors { try t.bytes.withUnsafeBytes { try sink.write($0) } }
        }
    }
}

func hex8(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}
