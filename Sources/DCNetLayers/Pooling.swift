import DCNetTensor

/// Max pooling with a square window (no padding); backward routes each gradient to the arg-max.
public final class MaxPool2D: Layer {
    public let name: String
    public let size: Int, stride: Int
    private var output: Tensor!, inputGradient: Tensor!
    private var argmax: UnsafeMutablePointer<Int32>!
    private var inputShape: Shape!

    public init(_ name: String, size: Int = 2, stride: Int = 2) {
        self.name = name; self.size = size; self.stride = stride
    }
    deinit { argmax?.deallocate() }

    public func build(input: Shape, arena: Arena) -> Shape {
        inputShape = input
        let out = Shape(n: input.n, c: input.c, h: (input.h - size) / stride + 1, w: (input.w - size) / stride + 1)
        output = arena.tensor(out); inputGradient = arena.tensor(input)
        argmax = .allocate(capacity: out.count)
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = output.prefix(samples: x.shape.n)
        let H = x.shape.h, W = x.shape.w, OH = y.shape.h, OW = y.shape.w
        for plane in 0..<(x.shape.n * x.shape.c) {
            let src = x.data + plane * H * W, dst = y.data + plane * OH * OW
            let arg = argmax + plane * OH * OW
            for oy in 0..<OH {
                for ox in 0..<OW {
                    var best = -Float.infinity, bestIndex = 0
                    for ky in 0..<size {
                        let row = (oy * stride + ky) * W + ox * stride
                        for kx in 0..<size where src[row + kx] > best {
                            best = src[row + kx]; bestIndex = row + kx
                        }
                    }
                    dst[oy * OW + ox] = best
                    arg[oy * OW + ox] = Int32(bestIndex)
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
        guard needInputGradient else { return nil }
        let dx = inputGradient.prefix(samples: dy.shape.n)
        dx.zero()
        let HW = inputShape.h * inputShape.w, OHW = dy.shape.spatial
        for plane in 0..<(dy.shape.n * dy.shape.c) {
            let g = dy.data + plane * OHW, out = dx.data + plane * HW, arg = argmax + plane * OHW
            for i in 0..<OHW { out[Int(arg[i])] += g[i] }
        }
        return dx
    }
}

/// Average pooling with a square window (no padding). `GlobalAveragePool` is the whole-map case.
public final class AvgPool2D: Layer {
    public let name: String
    public let size: Int?, stride: Int?
    private var output: Tensor!, inputGradient: Tensor!
    private var inputShape: Shape!
    private var window = 1, step = 1

    /// `size == nil`: global average pooling to C×1×1.
    public init(_ name: String, size: Int? = nil, stride: Int? = nil) {
        self.name = name; self.size = size; self.stride = stride ?? size
    }

    public func build(input: Shape, arena: Arena) -> Shape {
        inputShape = input
        let out: Shape
        if let size, let stride {
            alwaysPrecondition(
                size <= input.h && size <= input.w && stride > 0,
                "\(name): \(size)×\(size) window, stride \(stride) on \(input)")
            window = size; step = stride
            out = Shape(n: input.n, c: input.c, h: (input.h - size) / stride + 1, w: (input.w - size) / stride + 1)
        } else {
            alwaysPrecondition(input.h == input.w, "\(name): global pooling of a non-square map \(input)")
            window = input.h; step = input.h
            out = Shape(n: input.n, c: input.c, h: 1, w: 1)
        }
        output = arena.tensor(out); inputGradient = arena.tensor(input)
        return out
    }

    public func forward(_ x: Tensor, mode: Mode) -> Tensor {
        let y = output.prefix(samples: x.shape.n)
        let H = x.shape.h, W = x.shape.w, OH = y.shape.h, OW = y.shape.w
        let scale = 1 / Float(window * window)
        for plane in 0..<(x.shape.n * x.shape.c) {
            let src = x.data + plane * H * W, dst = y.data + plane * OH * OW
            if OH == 1 && OW == 1 && window == H && window == W {
                dst[0] = sumFloats(src, H * W) * scale
                continue
            }
            for oy in 0..<OH {
                for ox in 0..<OW {
                    var s: Float = 0
                    for ky in 0..<window {
                        let row = src + (oy * step + ky) * W + ox * step
                        for kx in 0..<window { s += row[kx] }
                    }
                    dst[oy * OW + ox] = s * scale
                }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, needInputGradient: Bool, needParameterGradients: Bool) -> Tensor? {
        guard needInputGradient else { return nil }
        let dx = inputGradient.prefix(samples: dy.shape.n)
        dx.zero()
        let H = inputShape.h, W = inputShape.w, OH = dy.shape.h, OW = dy.shape.w
        let scale = 1 / Float(window * window)
        for plane in 0..<(dy.shape.n * dy.shape.c) {
            let g = dy.data + plane * OH * OW, out = dx.data + plane * H * W
            for oy in 0..<OH {
                for ox in 0..<OW {
                    let v = g[oy * OW + ox] * scale
                    for ky in 0..<window {
                        let row = out + (oy * step + ky) * W + ox * step
                        for kx in 0..<window { row[kx] += v }
                    }
                }
            }
        }
        return dx
    }
}
