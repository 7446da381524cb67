import XCTest

@testable import MPI

/// Every rank runs these methods in the same order with the same sizes, so the
/// collectives match under `mpirun -np N` as well as in a plain one-rank `swift test`.
final class AllReduceTests: XCTestCase {
    let comm = Communicator.world

    private func checkAllReduce<T: TestScalar>(_: T.Type, file: StaticString = #filePath, line: UInt = #line) throws {
        let rank = comm.rank, size = comm.size
        for count in testSizes {
            let mine: [T] = input(count, rank: rank, size: size)
            for op in allOps {
                let want: [T] = reduced(count, size: size, op: op)

                // In place, through the array overload.
                var inPlace = mine
                try comm.allReduce(&inPlace, op: op)
                let bad1 = firstMismatch(inPlace, want)
                XCTAssertNil(
                    bad1,
                    "\(T.self) in-place \(op) count \(count): element \(bad1 ?? -1) is "
                        + "\(bad1.map { "\(inPlace[$0]), expected \(want[$0])" } ?? "")", file: file, line: line)

                // Out of place, through the buffer-pointer overload; send must be untouched.
                let send = mine
                var receive = [T](repeating: T(0), count: count)
                try send.withUnsafeBufferPointer { s in
                    try receive.withUnsafeMutableBufferPointer { r in
                        try comm.allReduce(s, into: r, op: op)
                    }
                }
                let bad2 = firstMismatch(receive, want)
                XCTAssertNil(
                    bad2,
                    "\(T.self) out-of-place \(op) count \(count): element \(bad2 ?? -1) is "
                        + "\(bad2.map { "\(receive[$0]), expected \(want[$0])" } ?? "")", file: file, line: line)
                XCTAssertNil(
                    firstMismatch(send, mine), "out-of-place allReduce modified its send buffer",
                    file: file, line: line)
            }
        }
    }

    func testFloat() throws { try checkAllReduce(Float.self) }
    func testDouble() throws { try checkAllReduce(Double.self) }
    func testInt32() throws { try checkAllReduce(Int32.self) }
    func testInt64() throws { try checkAllReduce(Int64.self) }
    func testInt() throws { try checkAllReduce(Int.self) }
    func testUInt8() throws { try checkAllReduce(UInt8.self) }
    func testUInt16() throws { try checkAllReduce(UInt16.self) }

    /// The overloads not exercised above: in place on a raw buffer, out of place on arrays.
    func testOtherOverloads() throws {
        let rank = comm.rank, size = comm.size, count = 4099
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        for i in 0..<count { buffer[i] = Float(pattern(i, rank: rank, size: size)) }
        try comm.allReduce(buffer, op: .sum)
        XCTAssertNil(firstMismatch(UnsafeBufferPointer(buffer), size: size, op: .sum))

        let send = (0..<count).map { Int32(pattern($0, rank: rank, size: size)) }
        var receive = [Int32](repeating: -1, count: count)
        try comm.allReduce(send, into: &receive, op: .max)
        XCTAssertNil(receive.withUnsafeBufferPointer { firstMismatch($0, size: size, op: .max) })
    }

    func testScalarAllReduce() throws {
        let r = comm.rank, s = comm.size
        XCTAssertEqual(try comm.allReduce(Double(r + 1)), Double(s * (s + 1) / 2))
        XCTAssertEqual(try comm.allReduce(Int64(r), op: .max), Int64(s - 1))
        XCTAssertEqual(try comm.allReduce(Float(r) + 0.5, op: .min), 0.5)
    }

    /// bfloat16 reduces as numbers (a user-defined MPI operation), blocking and nonblocking. The
    /// values are small multiples of 1/4, so every partial sum is exact in bfloat16's 8 bits.
    func testBFloat16Reductions() throws {
        let rank = comm.rank, size = comm.size
        for count in [0, 1, 7, 4099, 100_000] {
            func value(_ i: Int, _ r: Int) -> Float { Float((i * 7 + r * 3) % 11) * 0.25 - 1 }
            for op in [ReductionOp.sum, .max, .min] {
                var data = (0..<count).map { BFloat16(value($0, rank)) }
                if count % 2 == 0 {
                    try comm.allReduce(&data, op: op)
                } else {
                    try data.withUnsafeMutableBufferPointer { try comm.iAllReduce($0, op: op).wait() }
                }
                for i in 0..<count {
                    let all = (0..<size).map { value(i, $0) }
                    let want: Float = op == .sum ? all.reduce(0, +) : op == .max ? all.max()! : all.min()!
                    if data[i].float != want {
                        XCTFail("bfloat16 \(op) count \(count) element \(i): \(data[i].float), expected \(want)")
                        break
                    }
                }
            }
        }
    }

    func testBFloat16RoundsToNearestEven() {
        func bits(_ f: UInt32) -> UInt16 { BFloat16(Float(bitPattern: f)).bitPattern }
        XCTAssertEqual(bits(0x3F80_8000), 0x3F80, "a tie rounds to the even neighbour (down)")
        XCTAssertEqual(bits(0x3F81_8000), 0x3F82, "a tie rounds to the even neighbour (up)")
        XCTAssertEqual(bits(0x3F80_8001), 0x3F81, "above the tie rounds up")
        XCTAssertEqual(bits(0x3F80_7FFF), 0x3F80, "below the tie rounds down")
        XCTAssertEqual(bits(0xBF80_C000), 0xBF81, "negative values round by magnitude")
        XCTAssertEqual(bits(0x7F7F_FFFF), 0x7F80, "the largest Float rounds to infinity")
        XCTAssertEqual(BFloat16(-Float.infinity).float, -.infinity)
        XCTAssertTrue(BFloat16(.nan).float.isNaN)
        XCTAssertEqual(BFloat16(1e-30).float, 1e-30, accuracy: 1e-32, "bfloat16 keeps Float's range")
        for x: Float in [0, 1, -2.5, 3.140625, 65280] { XCTAssertEqual(BFloat16(x).float, x, "\(x) is exact") }
    }
}
