import DCNetFormats
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class SafeTensorsTests: XCTestCase {
    private var temporary: TempDir?
    var dir: String { temporary!.path }
    override func setUp() { temporary = TempDir("st-test") }
    override func tearDown() { temporary = nil }

    func sample() -> SafeTensorsFile {
        var f = SafeTensorsFile(metadata: ["epoch": "3", "note": "quote \" backslash \\ newline \n ünï"])
        f.append(
            "conv1.weight",
            StoredTensor(
                floats: [
                    1.5, -0.0, .infinity, -.infinity, Float(bitPattern: 0x7FC0_1234),
                    .leastNonzeroMagnitude, .greatestFiniteMagnitude, 0.1,
                ],
                shape: [2, 1, 2, 2]))
        f.append(
            "adam.v",
            StoredTensor(doubles: [Double.pi, -1e-300, Double(bitPattern: 0x7FF8_0000_0000_0042)], shape: [3]))
        f.append("rng.state", StoredTensor(int64s: [Int64.min, -1, 0, Int64.max], shape: [4]))
        f.append("mask", StoredTensor(uint8s: [0, 1, 255, 128, 7, 9], shape: [2, 3]))
        f.append("step", StoredTensor(int64s: [1234], shape: []))
        f.append("empty", StoredTensor(floats: [], shape: [0, 5]))
        return f
    }

    func files(in d: String) -> [String] {
        guard let dp = opendir(d) else { return [] }
        defer { closedir(dp) }
        var names: [String] = []
        while let e = readdir(dp) {
            let n = withUnsafeBytes(of: e.pointee.d_name) {
                String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
            }
            if n != "." && n != ".." { names.append(n) }
        }
        return names.sorted()
    }
    func readBytes(_ p: String) -> [UInt8] { try! FileIO.readAll(p) }
    func writeBytes(_ p: String, _ b: [UInt8]) {
        let f = fopen(p, "wb")!; if !b.isEmpty { fwrite(b, 1, b.count, f) }; fclose(f)
    }

    func testRoundTripBitExact() throws {
        let f = sample()
        let path = dir + "/model.safetensors"
        try f.write(to: path)
        XCTAssertEqual(files(in: dir), ["model.safetensors"], "temporary file left behind")
        let g = try SafeTensorsFile.read(path: path, requireChecksum: true)
        XCTAssertEqual(g.names, f.names)  // order preserved
        for (a, b) in zip(f.tensors, g.tensors) {
            XCTAssertEqual(a.tensor.dtype, b.tensor.dtype)
            XCTAssertEqual(a.tensor.shape, b.tensor.shape)
            XCTAssertEqual(a.tensor.bytes, b.tensor.bytes, a.name)  // bit-exact, NaN payloads included
        }
        XCTAssertEqual(g.metadata, f.metadata)
        XCTAssertEqual(g["conv1.weight"]!.floats!.map(\.bitPattern), f["conv1.weight"]!.floats!.map(\.bitPattern))
        XCTAssertEqual(g["rng.state"]!.int64s, [Int64.min, -1, 0, Int64.max])
        XCTAssertEqual(g["step"]!.int64s, [1234])
        XCTAssertEqual(g["adam.v"]!.doubles!.map(\.bitPattern), f["adam.v"]!.doubles!.map(\.bitPattern))
        XCTAssertEqual(g["mask"]!.uint8s, [0, 1, 255, 128, 7, 9])
        XCTAssertNil(g["mask"]!.floats)
        // Layout: u64 header length, header padded to 8, data at 8 + N.
        let bytes = readBytes(path)
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(n % 8, 0)
        XCTAssertEqual(bytes[8], UInt8(ascii: "{"))
        XCTAssertEqual(try f.serialized(), bytes)
        // Deterministic: same content, same bytes.
        XCTAssertEqual(try sample().serialized(), bytes)
        // Overwrite replaces atomically.
        var h = f; h.metadata["epoch"] = "4"
        try h.write(to: path)
        XCTAssertEqual(try SafeTensorsFile.read(path: path).metadata["epoch"], "4")
        XCTAssertEqual(files(in: dir), ["model.safetensors"])
        // copyFloats into raw memory.
        var buf = [Float](repeating: 0, count: 8)
        try buf.withUnsafeMutableBufferPointer { try g["conv1.weight"]!.copyFloats(into: $0.baseAddress!, count: 8) }
        XCTAssertEqual(buf[0], 1.5)
        XCTAssertThrowsError(
            try buf.withUnsafeMutableBufferPointer {
                try g["conv1.weight"]!.copyFloats(into: $0.baseAddress!, count: 7)
            })
    }

    func expectError(_ kind: SafeTensorsError.Kind, _ bytes: [UInt8], line: UInt = #line) {
        let p = dir + "/damaged.safetensors"
        writeBytes(p, bytes)
        do {
            _ = try SafeTensorsFile.read(path: p)
            XCTFail("expected \(kind)", line: line)
        } catch let e as SafeTensorsError {
            XCTAssertEqual(e.kind, kind, "\(e)", line: line)
            XCTAssertTrue("\(e)".contains("damaged.safetensors"), "\(e)", line: line)
        } catch { XCTFail("\(error)", line: line) }
    }

    /// Replaces `old` with `new` (same length) inside the header.
    func patched(_ b: [UInt8], _ old: String, _ new: String) -> [UInt8] {
        precondition(old.utf8.count == new.utf8.count)
        let o = Array(old.utf8), nw = Array(new.utf8)
        var out = b
        for k in 8..<(out.count - o.count) where Array(out[k..<k + o.count]) == o {
            out.replaceSubrange(k..<k + o.count, with: nw); return out
        }
        XCTFail("pattern \(old) not found"); return out
    }

    /// A file from a literal header (padded) and data.
    func raw(_ header: String, data: [UInt8]) -> [UInt8] {
        var h = Array(header.utf8); while h.count % 8 != 0 { h.append(0x20) }
        var out = [UInt8](); var n = UInt64(h.count)
        for _ in 0..<8 { out.append(UInt8(n & 0xFF)); n >>= 8 }
        return out + h + data
    }

    /// Sizes from the header are multiplied with overflow checks: a shape whose byte size does not
    /// fit in an Int (2⁶¹ F32 elements = 2⁶³ bytes) is an error, not a trap.
    func testHugeShapesAreRefusedNotATrap() {
        for shape in ["[2305843009213693952]", "[4294967296,4294967296]", "[3037000500,3037000500,4]"] {
            expectError(
                .badHeader,
                raw(#"{"a":{"dtype":"F32","shape":"# + shape + #","data_offsets":[0,4]}}"#, data: [1, 2, 3, 4]))
        }
    }

    func testDamagedFilesDetected() throws {
        let good = try sample().serialized()
        let n = Int(good[0]) | Int(good[1]) << 8
        expectError(.truncated, Array(good.prefix(5)))  // shorter than the length field
        expectError(.truncated, Array(good.prefix(8 + n / 2)))  // inside the header
        expectError(.truncated, Array(good.dropLast(3)))  // inside the data
        expectError(.truncated, [])  // empty file
        var huge = good; huge[7] = 0x7F
        expectError(.badHeaderLength, huge)
        var zero = good; for k in 0..<8 { zero[k] = 0 }
        expectError(.badHeaderLength, zero)
        var badJSON = good; badJSON[8] = UInt8(ascii: "[")
        expectError(.badJSON, badJSON)
        expectError(.badJSON, patched(good, "\"dtype\":\"F32\"", "\"dtype\"=\"F32\""))
        expectError(.badHeader, patched(good, "\"data_offsets\":[0,32]", "\"data_offsets\":[0,99]"))  // size ≠ shape
        // Offsets pointing outside the data section.
        expectError(
            .offsetsOutOfRange, raw(#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[100,104]}}"#, data: [1, 2, 3, 4]))
        expectError(
            .offsetsOutOfRange, raw(#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[8,4]}}"#, data: [1, 2, 3, 4]))
        expectError(
            .offsetsOutOfRange,
            raw(
                #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"#
                    + #""b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#,
                data: [1, 2, 3, 4]))
        expectError(.truncated, raw(#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#, data: [1, 2]))
        expectError(.badJSON, raw(#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}"#, data: [1, 2, 3, 4]))
        expectError(
            .unknownDType, raw(#"{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#, data: [1, 2, 3, 4]))
        XCTAssertNoThrow(
            try SafeTensorsFile.parse(
                raw(#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#, data: [1, 2, 3, 4])))
        expectError(.unknownDType, patched(good, "\"U8\"", "\"X8\""))
        var flipped = good; flipped[flipped.count - 30] ^= 0x01  // one bit in the data section
        expectError(.checksumMismatch, flipped)
        expectError(.offsetsOutOfRange, good + [0, 0, 0, 0, 0, 0, 0, 0])  // trailing bytes
        // Missing file.
        XCTAssertThrowsError(try SafeTensorsFile.read(path: dir + "/nope.safetensors")) {
            XCTAssertTrue("\($0)".contains("nope.safetensors"))
        }
    }

    func testFailedWriteLeavesOldFileIntact() throws {
        let path = dir + "/ckpt.safetensors"
        try sample().write(to: path)
        let before = readBytes(path)

        // 1. Invalid content (duplicate names) is rejected before touching the file.
        var dup = sample(); dup.append("mask", StoredTensor(uint8s: [1]))
        XCTAssertThrowsError(try dup.write(to: path))
        XCTAssertEqual(readBytes(path), before)

        // 2. A write error part-way (file size limit → EFBIG, like a full disk) throws,
        //    leaves no temporary file and the old checkpoint unchanged.
        var big = SafeTensorsFile()
        big.append("w", StoredTensor(floats: [Float](repeating: 1, count: 100_000)))
        var old = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        let oldHandler = signal(SIGXFSZ, SIG_IGN)
        var lim = old; lim.rlim_cur = 64 * 1024
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &lim), 0)
        var threw = false
        do { try big.write(to: path) } catch {
            threw = true; XCTAssertTrue("\(error)".contains("ckpt.safetensors"), "\(error)")
        }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        signal(SIGXFSZ, oldHandler)
        XCTAssertTrue(threw, "write beyond the file size limit must throw")
        XCTAssertEqual(readBytes(path), before)
        XCTAssertEqual(files(in: dir), ["ckpt.safetensors"])
        _ = try SafeTensorsFile.read(path: path, requireChecksum: true)

        // 3. Destination directory missing.
        XCTAssertThrowsError(try sample().write(to: dir + "/no/such/dir/x.safetensors"))
    }

    func python(_ script: String) -> (Int32, String) {
        let sp = dir + "/check.py", out = dir + "/py.out"
        writeBytes(sp, Array(script.utf8))
        let rc = system("python3 '\(sp)' > '\(out)' 2>&1")
        let text = String(decoding: (try? FileIO.readAll(out)) ?? [], as: UTF8.self)
        return (rc, text)
    }

    /// Writes `sample()` to `file` and runs `script(path)` with python3, which must print "ok";
    /// skipped where python3 cannot import `modules` (pip install numpy safetensors).
    func checkSampleWithPython(importing modules: String, file: String, _ script: (String) -> String) throws {
        guard system("python3 -c 'import \(modules)' >/dev/null 2>&1") == 0 else {
            throw XCTSkip("python3 with \(modules) not available (pip install numpy safetensors)")
        }
        let path = dir + "/" + file
        try sample().write(to: path)
        let (rc, out) = python(script(path))
        XCTAssertEqual(rc, 0, out)
        XCTAssertTrue(out.contains("ok"), out)
    }

    /// Loads our file with the reference `safetensors` Python package.
    func testInteropWithPythonSafetensors() throws {
        try checkSampleWithPython(importing: "numpy, safetensors", file: "interop.safetensors") { path in
            """
            import numpy as np
            from safetensors.numpy import load_file
            from safetensors import safe_open
            t = load_file("\(path)")
            assert sorted(t) == sorted(["conv1.weight", "adam.v", "rng.state", "mask", "step", "empty"]), sorted(t)
            assert t["conv1.weight"].shape == (2, 1, 2, 2) and t["conv1.weight"].dtype == np.float32
            assert t["conv1.weight"].reshape(-1)[0] == 1.5 and np.isinf(t["conv1.weight"].reshape(-1)[2])
            assert t["adam.v"].dtype == np.float64 and abs(t["adam.v"][0] - np.pi) < 1e-15
            assert t["rng.state"].dtype == np.int64 and t["rng.state"][0] == np.iinfo(np.int64).min
            assert t["mask"].shape == (2, 3) and t["mask"][0, 2] == 255
            assert t["step"].shape == () and int(t["step"]) == 1234
            assert t["empty"].shape == (0, 5)
            with safe_open("\(path)", framework="np") as f:
                m = f.metadata()
            assert m["epoch"] == "3" and m["dcnet.checksum"].startswith("crc32-file:"), m
            print("ok")
            """
        }
    }

    /// Independent check of the layout with plain numpy + json (runs where the safetensors
    /// package is missing): header length, JSON, padding, offsets and values.
    func testLayoutWithNumpyOnly() throws {
        try checkSampleWithPython(importing: "numpy", file: "np.safetensors") { path in
            """
            import json, struct, zlib, numpy as np
            b = open("\(path)", "rb").read()
            n, = struct.unpack("<Q", b[:8]); assert n % 8 == 0
            h = json.loads(b[8:8 + n]); data = b[8 + n:]
            meta = h.pop("__metadata__")
            c = meta["dcnet.checksum"]  # CRC-32 of the whole file with its own 8 digits read as zeros
            zeroed = b.replace(('"%s"' % c).encode(), b'"crc32-file:00000000"')
            assert c == "crc32-file:%08x" % zlib.crc32(zeroed), meta
            dt = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "U8": "u1"}
            end = 0
            arrs = {}
            for k, v in sorted(h.items(), key=lambda kv: kv[1]["data_offsets"]):
                s, e = v["data_offsets"]; assert s == end; end = e
                arrs[k] = np.frombuffer(data[s:e], dtype=dt[v["dtype"]]).reshape(v["shape"])
            assert end == len(data)
            assert list(h) == ["conv1.weight", "adam.v", "rng.state", "mask", "step", "empty"], list(h)
            assert arrs["conv1.weight"][1, 0, 1, 1] == np.float32(0.1)
            assert arrs["rng.state"][3] == 2**63 - 1 and arrs["mask"][1, 2] == 9 and arrs["step"] == 1234
            print("ok")
            """
        }
    }
}
