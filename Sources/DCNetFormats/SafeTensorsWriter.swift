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
        json += meta.keys.sorted().map { "\(jsonString($0)):\(jsonString(meta[$0]!))" }.joined(separator: ",")
        json += "}"
        var offset = 0
        for (name, t) in tensors {
            let end = offset + t.bytes.count
            json +=
                ",\(jsonString(name)):{\"dtype\":\"\(t.dtype.rawValue)\","
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
}

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

func hex8(_ v: UInt32) -> String {
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
