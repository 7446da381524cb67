import DCNetRandom

/// How raw bytes 0...255 become network inputs.
public enum Scaling: Sendable, Equatable {
    /// (x − 127.5) / 128, the DCNet authors' preprocessing (default).
    case authors
    /// ((x / 255) − mean[c]) / std[c] per channel, mean/std in [0, 1] units (3 values each).
    case meanStd(mean: [Float], std: [Float])

    /// CIFAR-10 training-set per-channel mean and (population) standard deviation.
    public static let cifar10MeanStd = Scaling.meanStd(
        mean: [0.4914, 0.4822, 0.4465],
        std: [0.2470, 0.2435, 0.2616])

    /// Scaled value of byte `x` in channel `c`.
    public func scale(_ x: UInt8, channel c: Int) -> Float {
        switch self {
        case .authors: return (Float(x) - 127.5) / 128
        case let .meanStd(mean, std): return (Float(x) / 255 - mean[c]) / std[c]
        }
    }
    /// Raw value that scales to 0 in channel `c` (what zero padding corresponds to).
    public func rawZero(channel c: Int) -> Float {
        switch self {
        case .authors: return 127.5
        case let .meanStd(mean, _): return mean[c] * 255
        }
    }
}

/// What the 4-pixel border around an image holds before the random crop.
public enum Padding: String, Sendable, Hashable, Codable, CaseIterable {
    /// Zeros in scaled units (the usual PyTorch recipe).
    case zero
    /// The image mirrored at its edge, the edge pixel included (TensorFlow's `SYMMETRIC` mode, which
    /// the DCNet authors' input pipeline uses): column −1 repeats column 0, −2 repeats 1.
    case mirror

    /// Source row or column of padded coordinate `i` (−pad ..< 32 + pad) of a 32-pixel side, or nil
    /// where the border is zero.
    @inlinable public func source(_ i: Int) -> Int? {
        if i >= 0 && i < 32 { return i }
        switch self {
        case .zero: return nil
        case .mirror: return i < 0 ? -1 - i : 63 - i
        }
    }
}

/// Random-crop + horizontal-flip parameters of one sample.
public struct AugmentParams: Sendable, Hashable {
    /// Crop origin in the 40×40 zero-padded image, 0...8 each (4 = no shift).
    public var offsetX: Int, offsetY: Int
    public var flip: Bool
    public init(offsetX: Int, offsetY: Int, flip: Bool) {
        self.offsetX = offsetX; self.offsetY = offsetY; self.flip = flip
    }
    public static let identity = AugmentParams(offsetX: 4, offsetY: 4, flip: false)
}

/// Standard CIFAR augmentation: pad 4 (zeros after scaling, or the mirrored image), random 32×32
/// crop, random horizontal flip.
public enum Augmentation {
    public static let pad = 4

    /// Parameters for a sample: a pure function of (seed, epoch, global dataset index), so any
    /// rank (under any split of the data) produces exactly the image a single process would.
    @inlinable public static func parameters(seed: UInt64, epoch: Int, index: Int) -> AugmentParams {
        let h = SplitMix64.hash(
            seed ^ 0x4155_4745 /* "AUGE" */, UInt64(bitPattern: Int64(epoch)),
            UInt64(bitPattern: Int64(index)))
        // Three independent fields from disjoint bit ranges; 9 * 2^k bias is negligible (< 2^-40).
        let ox = Int((h >> 40) % 9), oy = Int(((h >> 16) & 0xFF_FFFF) % 9)
        return AugmentParams(offsetX: ox, offsetY: oy, flip: h & 1 == 1)
    }

    /// Writes one scaled (and optionally cropped/flipped) image into `out` (3×32×32 floats).
    /// `lut` holds 3×256 scaled values (channel-major). Output pixel (c, y, x) is
    /// padded[c][oy + y][ox + (flip ? 31 − x : x)], where padded is the scaled image with a
    /// 4-pixel border as `padding` says.
    @inlinable
    public static func render(
        _ src: UnsafePointer<UInt8>, params p: AugmentParams, padding: Padding = .zero,
        lut: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>
    ) {
        let dy = p.offsetY - pad, dx = p.offsetX - pad
        // Source column of each output column (−1: zero border), shared by the three channels.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 32) { columns in
            for x in 0..<32 { columns[x] = padding.source((p.flip ? 31 - x : x) + dx) ?? -1 }
            for c in 0..<3 {
                let plane = src + c * 1024, table = lut + c * 256, dstPlane = out + c * 1024
                for y in 0..<32 {
                    let dst = dstPlane + y * 32
                    guard let sy = padding.source(y + dy) else { dst.update(repeating: 0, count: 32); continue }
                    let row = plane + sy * 32
                    for x in 0..<32 {
                        let sx = columns[x]
                        dst[x] = sx >= 0 ? table[Int(row[sx])] : 0
                    }
                }
            }
        }
    }

    /// Fills the 3×256 lookup table for `scaling`.
    @inlinable public static func fillLUT(_ scaling: Scaling, _ lut: UnsafeMutablePointer<Float>) {
        for c in 0..<3 { for v in 0..<256 { lut[c * 256 + v] = scaling.scale(UInt8(v), channel: c) } }
    }
}

/// Writes a batch of `indices.count` samples as NCHW float32 `[n, 3, 32, 32]` into `pixels`
/// and their labels into `labels`. With `augment`, sample `i` gets
/// `Augmentation.parameters(seed:epoch:index: i)` (independent of batch position and rank);
/// without, images are only scaled. No heap allocation.
public func fillBatch<C: Collection>(
    images: LabeledImages, indices: C, epoch: Int, seed: UInt64,
    augment: Bool, scaling: Scaling = .authors, padding: Padding = .zero,
    into pixels: UnsafeMutablePointer<Float>,
    labels: UnsafeMutablePointer<Int32>
) where C.Element == Int {
    if case let .meanStd(mean, std) = scaling {
        precondition(mean.count == 3 && std.count == 3 && !std.contains(0), "meanStd needs 3 means and 3 non-zero stds")
    }
    let ib = LabeledImages.imageBytes
    let count = images.count
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * 256) { lutBuf in
        let lut = lutBuf.baseAddress!
        Augmentation.fillLUT(scaling, lut)
        images.pixels.withUnsafeBufferPointer { px in
            images.labels.withUnsafeBufferPointer { lb in
                var j = 0
                for i in indices {
                    precondition(i >= 0 && i < count, "sample index \(i) out of range 0..<\(count)")
                    let src = px.baseAddress! + i * ib, dst = pixels + j * ib
                    if augment {
                        Augmentation.render(
                            src, params: Augmentation.parameters(seed: seed, epoch: epoch, index: i),
                            padding: padding, lut: lut, into: dst)
                    } else {
                        for c in 0..<3 {
                            let t = lut + c * 256, s = src + c * 1024, d = dst + c * 1024
                            for k in 0..<1024 { d[k] = t[Int(s[k])] }
                        }
                    }
                    labels[j] = Int32(lb[i])
                    j += 1
                }
            }
        }
    }
}
