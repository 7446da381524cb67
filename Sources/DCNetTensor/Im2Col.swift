/// Geometry of a 2-D convolution over one image: input C×H×W, kernel R×S, stride, zero padding.
public struct ConvGeometry: Hashable, Sendable, CustomStringConvertible {
    public let channels: Int, height: Int, width: Int
    public let kernel: Int, stride: Int, padding: Int

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        alwaysPrecondition(channels > 0 && height > 0 && width > 0 && kernel > 0 && stride > 0 && padding >= 0)
        self.channels = channels; self.height = height; self.width = width
        self.kernel = kernel; self.stride = stride; self.padding = padding
    }
    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Output positions per image (the GEMM's N dimension).
    public var positions: Int { outHeight * outWidth }
    /// Patch length C·R·S (the GEMM's K dimension).
    public var patchSize: Int { channels * kernel * kernel }
    /// A 1×1, stride-1, unpadded convolution reads the image itself as its column matrix.
    public var isIdentityPacking: Bool { kernel == 1 && stride == 1 && padding == 0 }
    /// Stride 1 with the output the size of the input ("same" padding, odd kernels).
    public var isSameSizeStrideOne: Bool { stride == 1 && 2 * padding == kernel - 1 }
    /// For stride 1 and padding ≤ R-1, the input gradient is itself a stride-1 convolution of the
    /// output gradient (K channels, OH×OW) with the flipped, transposed filters and padding R-1-p.
    public func inputGradientGeometry(outChannels: Int) -> ConvGeometry? {
        guard stride == 1, padding <= kernel - 1, !isIdentityPacking else { return nil }
        return ConvGeometry(
            channels: outChannels, height: outHeight, width: outWidth,
            kernel: kernel, stride: 1, padding: kernel - 1 - padding)
    }
    public var description: String {
        "\(channels)×\(height)×\(width) k\(kernel) s\(stride) p\(padding)"
    }

    /// Output columns `[lo, hi)` whose input column `ow*stride - padding + ks` lies inside the image.
    @inline(__always)
    func validColumns(_ ks: Int) -> (Int, Int) {
        let off = ks - padding
        var lo = 0
        if off < 0 { lo = (-off + stride - 1) / stride }
        var hi = outWidth
        // need ow*stride + off <= width - 1
        let limit = width - 1 - off
        if limit < 0 { hi = 0 } else { hi = min(hi, limit / stride + 1) }
        return (lo, max(lo, hi))
    }
}

/// Packs one image (C×H×W) into the column matrix [C·R·S × OH·OW] used by the convolution GEMM.
/// Row (c, kr, ks) holds the input pixels each output position sees through that kernel tap.
public func im2col(_ g: ConvGeometry, image: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>) {
    if g.isSameSizeStrideOne {
        im2colSameSize(g, image: image, columns: columns)
        return
    }
    let oh = g.outHeight, ow = g.outWidth, P = oh * ow
    let H = g.height, W = g.width, s = g.stride, pad = g.padding
    var row = columns
    for c in 0..<g.channels {
        let plane = image + c * H * W
        for kr in 0..<g.kernel {
            for ks in 0..<g.kernel {
                let (lo, hi) = g.validColumns(ks)
                let colOff = ks - pad
                for y in 0..<oh {
                    let out = row + y * ow
                    let iy = y * s - pad + kr
                    if iy < 0 || iy >= H || lo >= hi {
                        out.update(repeating: 0, count: ow)
                        continue
                    }
                    if lo > 0 { out.update(repeating: 0, count: lo) }
                    let src = plane + iy * W + colOff
                    if s == 1 {
                        (out + lo).update(from: src + lo, count: hi - lo)
                    } else {
                        for x in lo..<hi { out[x] = src[x * s] }
                    }
                    if hi < ow { (out + hi).update(repeating: 0, count: ow - hi) }
                }
                row += P
            }
        }
    }
}

/// im2col for a stride-1 convolution whose output has the input's size (padding (R-1)/2): each
/// kernel tap's row block is the image plane shifted by a constant offset, so it is one contiguous
/// copy per tap plus zeroing of the padded border, instead of one short copy per output row (which
/// on 8×8 and 16×16 layers cost more in call overhead than in bytes moved).
func im2colSameSize(_ g: ConvGeometry, image: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>) {
    let H = g.height, W = g.width, HW = H * W, pad = g.padding
    var row = columns
    for c in 0..<g.channels {
        let plane = image + c * HW
        for kr in 0..<g.kernel {
            let dy = kr - pad
            let y0 = max(0, -dy), y1 = min(H, H - dy)
            for ks in 0..<g.kernel {
                let dx = ks - pad
                if y0 > 0 { row.update(repeating: 0, count: y0 * W) }
                if y1 < H { (row + y1 * W).update(repeating: 0, count: (H - y1) * W) }
                if y0 < y1 {
                    // Output i of the block reads plane[i + offset]; clip to the plane (the clipped
                    // elements are border columns, zeroed below).
                    let offset = dy * W + dx
                    let lo = max(y0 * W, -offset), hi = min(y1 * W, HW - offset)
                    if lo < hi { (row + lo).update(from: plane + lo + offset, count: hi - lo) }
                    if lo > y0 * W { (row + y0 * W).update(repeating: 0, count: lo - y0 * W) }
                    if hi < y1 * W { (row + hi).update(repeating: 0, count: y1 * W - hi) }
                    // Columns that wrapped onto the neighbouring image row are padding. Strided
                    // stores, column by column: a memset call per row cost more than the copy.
                    let first = dx < 0 ? 0 : W - min(dx, W), count = min(abs(dx), W)
                    for j in first..<(first + count) {
                        var p = row + y0 * W + j
                        for _ in y0..<y1 { p.pointee = 0; p += W }
                    }
                }
                row += HW
            }
        }
    }
}

/// Adjoint of `im2col`: scatters column gradients back onto the image, accumulating overlaps.
/// Overwrites `image` (it is zeroed first).
public func col2im(_ g: ConvGeometry, columns: UnsafePointer<Float>, image: UnsafeMutablePointer<Float>) {
    let oh = g.outHeight, ow = g.outWidth, P = oh * ow
    let H = g.height, W = g.width, s = g.stride, pad = g.padding
    image.update(repeating: 0, count: g.channels * H * W)
    var row = columns
    for c in 0..<g.channels {
        let plane = image + c * H * W
        for kr in 0..<g.kernel {
            for ks in 0..<g.kernel {
                let (lo, hi) = g.validColumns(ks)
                let colOff = ks - pad
                if lo < hi {
                    for y in 0..<oh {
                        let iy = y * s - pad + kr
                        if iy < 0 || iy >= H { continue }
                        let src = row + y * ow
                        let dst = plane + iy * W + colOff
                        if s == 1 {
                            for x in lo..<hi { dst[x] += src[x] }
                        } else {
                            for x in lo..<hi { dst[x * s] += src[x] }
                        }
                    }
                }
                row += P
            }
        }
    }
}

/// Sum over each convolution window of a single-channel map (H×W → OH×OW), zero padded.
/// Used for patch norms: ||x||² of every patch is the window sum of Σ_c x², which costs
/// O(R·S) per position instead of a full convolution against a ones filter.
public func windowSum(_ g: ConvGeometry, map: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
    let s = g.stride
    out.update(repeating: 0, count: g.outHeight * g.outWidth)
    forEachWindowRow(g) { inputRow, outputRow, columns in
        let src = map + inputRow, dst = out + outputRow
        if s == 1 {
            for x in columns { dst[x] += src[x] }
        } else {
            for x in columns { dst[x] += src[x * s] }
        }
    }
}

/// Adjoint of `windowSum`: every input pixel receives the sum of the gradients of the windows
/// that contain it. Overwrites `map`.
public func windowSumAdjoint(_ g: ConvGeometry, gradient: UnsafePointer<Float>, map: UnsafeMutablePointer<Float>) {
    let s = g.stride
    map.update(repeating: 0, count: g.height * g.width)
    forEachWindowRow(g) { inputRow, outputRow, columns in
        let dst = map + inputRow, src = gradient + outputRow
        if s == 1 {
            for x in columns { dst[x] += src[x] }
        } else {
            for x in columns { dst[x * s] += src[x] }
        }
    }
}

/// The rows a window sum and its adjoint pair up: for every kernel offset (kr, ks) and output row y
/// whose input row y·stride − padding + kr is inside the map, `body` gets the offset of that input
/// row shifted by ks − padding, the offset of output row y, and the output columns whose input
/// column is inside the map.
@inline(__always)
func forEachWindowRow(_ g: ConvGeometry, _ body: (_ inputRow: Int, _ outputRow: Int, _ columns: Range<Int>) -> Void) {
    let oh = g.outHeight, ow = g.outWidth, H = g.height, W = g.width, s = g.stride, pad = g.padding
    for kr in 0..<g.kernel {
        for ks in 0..<g.kernel {
            let (lo, hi) = g.validColumns(ks)
            if lo >= hi { continue }
            for y in 0..<oh {
                let iy = y * s - pad + kr
                if iy < 0 || iy >= H { continue }
                body(iy * W + ks - pad, y * ow, lo..<hi)
            }
        }
    }
}
