import DCNetTensor
import XCTest

/// im2col (including its contiguous fast path for stride-1 "same" convolutions), col2im and the
/// window sums against direct loops over the definition.
final class Im2ColTests: XCTestCase {
    static let geometries: [ConvGeometry] = [
        ConvGeometry(channels: 2, height: 5, width: 7, kernel: 3, stride: 1, padding: 1),
        ConvGeometry(channels: 3, height: 8, width: 8, kernel: 3, stride: 1, padding: 1),
        ConvGeometry(channels: 2, height: 6, width: 4, kernel: 5, stride: 1, padding: 2),
        ConvGeometry(channels: 2, height: 2, width: 2, kernel: 5, stride: 1, padding: 2),
        ConvGeometry(channels: 1, height: 1, width: 1, kernel: 3, stride: 1, padding: 1),
        ConvGeometry(channels: 2, height: 5, width: 6, kernel: 1, stride: 1, padding: 0),
        ConvGeometry(channels: 2, height: 5, width: 7, kernel: 3, stride: 1, padding: 0),
        ConvGeometry(channels: 2, height: 5, width: 7, kernel: 3, stride: 1, padding: 2),
        ConvGeometry(channels: 2, height: 7, width: 6, kernel: 3, stride: 2, padding: 1),
        ConvGeometry(channels: 3, height: 6, width: 6, kernel: 1, stride: 2, padding: 0),
    ]

    /// columns[(c, r, s), (y, x)] = image[c, y·stride - pad + r, x·stride - pad + s] or 0 outside.
    static func reference(_ g: ConvGeometry, _ image: [Float]) -> [Float] {
        var out = [Float](repeating: -1, count: g.patchSize * g.positions)
        for c in 0..<g.channels {
            for r in 0..<g.kernel {
                for s in 0..<g.kernel {
                    let row = (c * g.kernel + r) * g.kernel + s
                    for y in 0..<g.outHeight {
                        for x in 0..<g.outWidth {
                            let iy = y * g.stride - g.padding + r, ix = x * g.stride - g.padding + s
                            let inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width
                            out[row * g.positions + y * g.outWidth + x] =
                                inside ? image[(c * g.height + iy) * g.width + ix] : 0
                        }
                    }
                }
            }
        }
        return out
    }

    func testIm2ColMatchesTheDefinition() {
        for g in Self.geometries {
            let image = (0..<(g.channels * g.height * g.width)).map { Float($0 + 1) }
            var columns = [Float](repeating: .nan, count: g.patchSize * g.positions)
            image.withUnsafeBufferPointer { src in
                columns.withUnsafeMutableBufferPointer { im2col(g, image: src.baseAddress!, columns: $0.baseAddress!) }
            }
            XCTAssertEqual(columns, Self.reference(g, image), "im2col \(g)")
        }
    }

    /// <im2col(x), c> = <x, col2im(c)> for random x and c: col2im is the exact adjoint.
    func testCol2ImIsTheAdjoint() {
        var seed: UInt64 = 7
        func next() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(seed >> 40) % 17 - 8)
        }
        for g in Self.geometries {
            let image = (0..<(g.channels * g.height * g.width)).map { _ in next() }
            let cols = (0..<(g.patchSize * g.positions)).map { _ in next() }
            let packed = Self.reference(g, image)
            var back = [Float](repeating: .nan, count: image.count)
            cols.withUnsafeBufferPointer { c in
                back.withUnsafeMutableBufferPointer { col2im(g, columns: c.baseAddress!, image: $0.baseAddress!) }
            }
            let lhs = zip(packed, cols).reduce(0) { $0 + $1.0 * $1.1 }
            let rhs = zip(image, back).reduce(0) { $0 + $1.0 * $1.1 }
            XCTAssertEqual(lhs, rhs, "col2im \(g)")
        }
    }
}

final class ArenaTests: XCTestCase {
    /// Small buffers are 64-byte aligned; buffers of 2 MiB and more start on a huge-page boundary
    /// (so the kernel can back them with transparent huge pages). All of them come zeroed and are
    /// distinct, whatever their size.
    func testArenaBuffersAreAlignedZeroedAndDisjoint() {
        let arena = Arena()
        let sizes = [1, 17, 1000, (2 << 20) / 4 - 1, (2 << 20) / 4, (2 << 20) / 4 + 1, 3 * (2 << 20) / 4 + 5]
        var ranges: [Range<UInt>] = []
        for count in sizes {
            let p = arena.floats(count)
            let address = UInt(bitPattern: p)
            XCTAssertEqual(address % 64, 0, "\(count) floats")
            if count * 4 >= 2 << 20 { XCTAssertEqual(address % UInt(2 << 20), 0, "\(count) floats") }
            XCTAssertTrue((0..<count).allSatisfy { p[$0] == 0 }, "\(count) floats are zeroed")
            for i in 0..<count { p[i] = Float(count) }
            ranges.append(address..<(address + UInt(count * 4)))
        }
        for (i, a) in ranges.enumerated() {
            for b in ranges[(i + 1)...] { XCTAssertFalse(a.overlaps(b)) }
        }
        let q = arena.integers((2 << 20) / 8 + 3)
        XCTAssertEqual(UInt(bitPattern: q) % UInt(2 << 20), 0)
        XCTAssertEqual(q[(2 << 20) / 8 + 2], 0)
    }
}
