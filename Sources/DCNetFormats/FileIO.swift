import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small POSIX helpers shared by the readers (and by checkpoint code in DCNetTraining).
public enum FileIO {
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
    public static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }
    static func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

    /// Reads a whole file into memory (one allocation of exactly the file size).
    public static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            throw DataError(e == ENOENT ? .missingFile : .io, path: path, "cannot open: \(errnoText(e))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DataError(.io, path: path, "cannot stat: \(errnoText())") }
        let size = Int(st.st_size)
        if size == 0 { return [] }
        var failure: DataError?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buf, initialized in
            var done = 0
            while done < size {
                let n = read(fd, buf.baseAddress! + done, min(size - done, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = DataError(.io, path: path, "read failed after \(done) of \(size) bytes: \(errnoText())")
                    break
                }
                if n == 0 {
                    failure = DataError(.io, path: path, "file shrank while reading: got \(done) of \(size) bytes")
                    break
                }
                done += n
            }
            initialized = done
        }
        if let failure { throw failure }
        return bytes
    }
}

/// gzip (and zlib) decoding and encoding through zlib's streaming API.
public enum Gzip {
    /// True when `bytes` start with the gzip magic number.
    public static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// Inflates a gzip (or zlib) stream, including concatenated multi-member gzip files.
    /// Output goes into one preallocated buffer sized from the gzip trailer (ISIZE) and
    /// grown by doubling if that hint is too small. `path` is used in error messages. The output
    /// stops at `limit` bytes (an error beyond it): the size field is the file's own claim, and a
    /// small damaged or hostile file could otherwise ask for any amount of memory.
    public static func decompress(_ input: [UInt8], path: String = "<memory>", limit: Int = Int.max) throws -> [UInt8] {
        if input.isEmpty { throw DataError(.emptyFile, path: path, "empty file (0 bytes), expected a gzip stream") }
        var out = InflateOutput(capacity: initialCapacity(input, limit: limit))
        var strm = z_stream()
        guard dcnet_inflate_init2(&strm, 15 + 32) == Z_OK else {
            throw DataError(.io, path: path, "zlib inflateInit2 failed")
        }
        defer { inflateEnd(&strm) }
        try input.withUnsafeBufferPointer { inBuf in
            let base = UnsafeMutablePointer(mutating: inBuf.baseAddress!)
            var consumed = 0
            var member = 1
            while true {
                if strm.avail_in == 0 && consumed < inBuf.count {
                    let chunk = min(inBuf.count - consumed, Int(UInt32.max >> 1))
                    strm.next_in = base + consumed
                    strm.avail_in = uInt(chunk)
                    consumed += chunk
                }
                if out.count > limit {
                    throw DataError(
                        .tooLarge, path: path, "decompresses to more than \(limit) bytes, more than this format holds")
                }
                let rc = out.inflate(&strm)
                if rc == Z_OK || (rc == Z_BUF_ERROR && strm.avail_out == 0) { continue }
                guard rc == Z_STREAM_END else {
                    throw inflateFailure(
                        rc, strm, path: path, member: member, produced: out.count,
                        inputEnded: strm.avail_in == 0 && consumed == inBuf.count, consumed: consumed,
                        compressedSize: inBuf.count)
                }
                let remaining = Int(strm.avail_in) + (inBuf.count - consumed)
                // Another gzip member may follow (multi-member file); zero padding is tolerated.
                if remaining == 0 || inBuf[(inBuf.count - remaining)...].allSatisfy({ $0 == 0 }) { return }
                member += 1
                guard inflateReset(&strm) == Z_OK else {
                    throw DataError(.corruptGzip, path: path, "corrupt gzip stream: cannot reset for member \(member)")
                }
            }
        }
        return out.bytes
    }

    /// The output buffer's first size: the last member's ISIZE (uncompressed size mod 2^32), a
    /// good first guess, within `limit`.
    private static func initialCapacity(_ input: [UInt8], limit: Int) -> Int {
        var hint = input.count * 2
        if input.count >= 18 {
            let n = input.count
            let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
            if isize > 0 { hint = isize + 64 }
        }
        return max(min(hint, limit == Int.max ? hint : limit + 1), 4096)
    }

    /// The inflated bytes so far, in a buffer that doubles when full.
    private struct InflateOutput: ~Copyable {
        private var pointer: UnsafeMutablePointer<UInt8>
        private var capacity: Int
        private(set) var count = 0

        init(capacity: Int) {
            self.capacity = capacity
            pointer = .allocate(capacity: capacity)
        }
        deinit { pointer.deallocate() }

        /// One `inflate` call into the free space (made first when there is none).
        mutating func inflate(_ strm: inout z_stream) -> Int32 {
            if count == capacity {
                let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
                bigger.update(from: pointer, count: count)
                pointer.deallocate()
                pointer = bigger
                capacity *= 2
            }
            let room = min(capacity - count, Int(UInt32.max >> 1))
            strm.next_out = pointer + count
            strm.avail_out = uInt(room)
            let rc = CZlib.inflate(&strm, Z_NO_FLUSH)
            count += room - Int(strm.avail_out)
            return rc
        }

        var bytes: [UInt8] { [UInt8](UnsafeBufferPointer(start: pointer, count: count)) }
    }

    /// The error for an `inflate` result other than progress or the end of a member.
    private static func inflateFailure(
        _ rc: Int32, _ strm: z_stream, path: String, member: Int, produced: Int, inputEnded: Bool, consumed: Int,
        compressedSize: Int
    ) -> DataError {
        switch rc {
        case Z_BUF_ERROR where inputEnded:
            return DataError(
                .truncatedGzip, path: path,
                "truncated gzip stream: input ended inside member \(member) after \(produced) "
                    + "decompressed bytes (compressed size \(compressedSize))")
        case Z_BUF_ERROR:
            return DataError(.corruptGzip, path: path, "corrupt gzip stream (zlib buffer error) in member \(member)")
        case Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR:
            let why = strm.msg.map { String(cString: $0) } ?? "data error"
            let at = consumed - Int(strm.avail_in)
            return DataError(
                .corruptGzip, path: path,
                "corrupt gzip stream: \(why) (member \(member), near compressed byte \(at) of \(compressedSize))")
        case Z_MEM_ERROR:
            return DataError(.io, path: path, "zlib out of memory")
        default:
            return DataError(.corruptGzip, path: path, "corrupt gzip stream: zlib error \(rc)")
        }
    }

    /// Compresses `bytes` into a single gzip member (no file name, mtime 0 - like `gzip -n`).
    public static func compress(_ bytes: [UInt8], level: Int32 = 9) -> [UInt8] {
        var strm = z_stream()
        let rc = deflateInit2_(
            &strm, level, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY,
            zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(rc == Z_OK, "deflateInit2 failed: \(rc)")
        defer { deflateEnd(&strm) }
        let bound = Int(deflateBound(&strm, uLong(bytes.count))) + 64
        var out = [UInt8](repeating: 0, count: bound)
        var input = bytes
        let produced: Int = input.withUnsafeMutableBufferPointer { inBuf in
            out.withUnsafeMutableBufferPointer { outBuf in
                strm.next_in = inBuf.baseAddress
                strm.avail_in = uInt(inBuf.count)
                strm.next_out = outBuf.baseAddress
                strm.avail_out = uInt(outBuf.count)
                let r = deflate(&strm, Z_FINISH)
                precondition(r == Z_STREAM_END, "deflate did not finish: \(r)")
                return outBuf.count - Int(strm.avail_out)
            }
        }
        out.removeLast(out.count - produced)
        return out
    }
}

/// CRC-32 (the zlib / gzip / PNG polynomial), streaming.
public struct CRC32: Sendable, Hashable {
    public private(set) var value: UInt32 = 0
    public init() {}
    public mutating func update(_ raw: UnsafeRawBufferPointer) {
        guard var p = raw.baseAddress?.assumingMemoryBound(to: Bytef.self) else { return }
        var left = raw.count
        var crc = uLong(value)
        while left > 0 {
            let n = min(left, 1 << 30)
            crc = CZlib.crc32(crc, p, uInt(n))
            p += n; left -= n
        }
        value = UInt32(truncatingIfNeeded: crc)
    }
    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    public static func checksum(_ raw: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32(); c.update(raw); return c.value
    }
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c = CRC32(); c.update(bytes); return c.value
    }
}
