import DCNetTensor

/// How ||w|| enters a decoupled operator (Liu et al., 2018, §3.4 "weighted decoupled operators").
public enum Weighting: String, Hashable, Sendable, Codable, CaseIterable {
    /// f = alpha·h(||x||)·g(theta): the filter norm is dropped.
    case none
    /// f = alpha·||w||·||x||·g(theta).
    case linear
    /// f = alpha·tanh(||w||·||x||·g(theta)/rho).
    case nonlinear
    /// f = alpha·tanh(||w||/rho)·tanh(||x||/rho)·g(theta).
    case separable
}

/// Where the operator radius rho comes from.
public enum RadiusMode: Hashable, Sendable, Codable {
    /// rho_c = (r_c² + 1e-4)·m with a learnable r per output channel (initialised to 1), m the mean
    /// patch norm of the batch in training (gradient flows through it) and a bias-corrected running
    /// average of it (EMA with this decay) in evaluation. This is the authors' parametrisation.
    case learnable(decay: Float)
    /// The same with r frozen at 1: rho = (1 + 1e-4)·m follows the layer's input scale.
    case relative(decay: Float)
    /// A constant rho.
    case fixed(Float)

    public var decay: Float? {
        switch self {
        case .learnable(let d), .relative(let d): return d
        case .fixed: return nil
        }
    }
}

/// A decoupled operator f(w, x) = h(||w||, ||x||)·g(theta) as a function of the normalised-filter
/// response u = <w/||w||, x> = ||x||·cos(theta), the patch norm xn = ||x||, the filter norm wn,
/// the radius rho and the angular sharpness k. The layers compute u with a GEMM and call
/// `forward`/`backward` below for the element-wise part; this file is the operator's math.
public struct DecoupledOperator: Hashable, Sendable, Codable {
    public var magnitude: MagnitudeFunction
    public var angular: AngularActivation
    public var weighting: Weighting
    /// Output scale alpha > 0 (for SegConv, the slope below rho: see `MagnitudeFunction.segmented`).
    public var alpha: Float
    public var radius: RadiusMode
    /// Sigmoid sharpness k. With `learnableSharpness` it is k_c = |k_raw,c| + `sharpnessOffset`, and this
    /// is the value k starts at (k_raw = sharpness − offset, so it must be at least the offset).
    public var sharpness: Float
    public var learnableSharpness: Bool

    /// Default fixed sharpness.
    public static let defaultSharpness: Float = 0.3
    /// Default start of a learnable sharpness: the authors' SphereNet code starts k_raw at 0.7.
    public static let defaultLearnableSharpness: Float = 0.75
    /// The floor of a learnable k = |k_raw| + offset.
    public static let sharpnessOffset: Float = 0.05

    /// `sharpness` nil takes `defaultSharpness`, or `defaultLearnableSharpness` when k is learnable.
    public init(
        magnitude: MagnitudeFunction, angular: AngularActivation = .cosine,
        weighting: Weighting = .none, alpha: Float = 1,
        radius: RadiusMode = .learnable(decay: 0.9),
        sharpness: Float? = nil, learnableSharpness: Bool = false
    ) {
        self.magnitude = magnitude; self.angular = angular; self.weighting = weighting
        self.alpha = alpha; self.radius = radius
        self.sharpness = sharpness ?? (learnableSharpness ? Self.defaultLearnableSharpness : Self.defaultSharpness)
        self.learnableSharpness = learnableSharpness
    }

    public var usesRadius: Bool {
        switch weighting {
        case .none: return magnitude.usesRadius
        case .linear: return false
        case .nonlinear, .separable: return true
        }
    }
    public var usesFilterNorm: Bool { weighting != .none }

    /// Value and partial derivatives of f at one output element.
    public struct Derivatives {
        public var f: Float, dU: Float, dXn: Float, dWn: Float, dRho: Float, dK: Float
        @inlinable
        public init(f: Float, dU: Float, dXn: Float, dWn: Float, dRho: Float, dK: Float) {
            self.f = f; self.dU = dU; self.dXn = dXn; self.dWn = dWn; self.dRho = dRho; self.dK = dK
        }
    }

    @inlinable @inline(__always)
    public func evaluate(u: Float, xn: Float, wn: Float, rho: Float, k: Float) -> Derivatives {
        evaluate(u: u, xn: xn, invXn: 1 / xn, wn: wn, rho: rho, k: k)
    }

    /// `evaluate` with 1/xn given: the element loops take it from the layer, which computes it once
    /// per position instead of once per output element.
    @inlinable @inline(__always)
    public func evaluate(u: Float, xn: Float, invXn: Float, wn: Float, rho: Float, k: Float) -> Derivatives {
        let c = u * invXn
        let (g, gc, gk) = angular.evaluate(c, sharpness: k)
        // ∂g/∂u = g'(c)/xn and ∂g/∂xn = −g'(c)·c/xn through c = u/xn.
        let gU = gc * invXn
        let gXn = -gc * c * invXn
        let a = alpha
        switch weighting {
        case .none:
            // h here is alpha·h: SegConv's alpha is not a plain factor (see `MagnitudeFunction.segmented`).
            let (h, hXn, hRho) = magnitude.evaluate(xn, radius: rho, alpha: a)
            return Derivatives(
                f: h * g, dU: h * gU, dXn: hXn * g + h * gXn,
                dWn: 0, dRho: hRho * g, dK: h * gk)
        case .linear:
            return Derivatives(
                f: a * wn * xn * g, dU: a * wn * xn * gU,
                dXn: a * wn * (g + xn * gXn), dWn: a * xn * g, dRho: 0,
                dK: a * wn * xn * gk)
        case .nonlinear:
            let z = wn * xn * g / rho
            let t = fastTanh(z)
            let dz = a * (1 - t * t)
            return Derivatives(
                f: a * t, dU: dz * wn * xn * gU / rho,
                dXn: dz * wn * (g + xn * gXn) / rho, dWn: dz * xn * g / rho,
                dRho: -dz * z / rho, dK: dz * wn * xn * gk / rho)
        case .separable:
            let tw = fastTanh(wn / rho), tx = fastTanh(xn / rho)
            let sw = 1 - tw * tw, sx = 1 - tx * tx
            return Derivatives(
                f: a * tw * tx * g, dU: a * tw * tx * gU,
                dXn: a * tw * (sx / rho * g + tx * gXn),
                dWn: a * sw / rho * tx * g,
                dRho: -a * g * (sw * wn * tx + tw * sx * xn) / (rho * rho),
                dK: a * tw * tx * gk)
        }
    }

    /// TanhConv with cosine and no weighting, the configuration of the paper's main results,
    /// has a vectorised path; every other combination uses `evaluate` per element.
    @usableFromInline var isTanhCosine: Bool {
        weighting == .none && magnitude == .tanh && angular == .cosine
    }

    /// out[k,p] = f(u[k,p], xn[p], wn[k], rho[k], k[k]) for one image (K rows of P positions).
    public func forward(
        u: UnsafePointer<Float>, xn: UnsafePointer<Float>, invXn: UnsafePointer<Float>,
        wn: UnsafePointer<Float>, rho: UnsafePointer<Float>, sharpness: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, channels K: Int, positions P: Int
    ) {
        if isTanhCosine {
            let a = alpha
            for k in 0..<K {
                let r = 1 / rho[k]
                let uk = u + k * P, ok = out + k * P
                for p in 0..<P { ok[p] = a * fastTanh(xn[p] * r) * uk[p] * invXn[p] }
            }
            return
        }
        switch angular {
        case .cosine: forwardRows(Cosine.self, u, xn, invXn, wn, rho, sharpness, out, K, P)
        case .linear: forwardRows(LinearAngle.self, u, xn, invXn, wn, rho, sharpness, out, K, P)
        case .sigmoid: forwardRows(Sigmoid.self, u, xn, invXn, wn, rho, sharpness, out, K, P)
        case .squareCosine: forwardRows(SquareCosine.self, u, xn, invXn, wn, rho, sharpness, out, K, P)
        }
    }

    /// The general forward loop, compiled once per angular activation `A` (see `withSpecialized`).
    @inline(never)
    func forwardRows<A: AngularKind>(
        _: A.Type, _ u: UnsafePointer<Float>, _ xn: UnsafePointer<Float>,
        _ invXn: UnsafePointer<Float>, _ wn: UnsafePointer<Float>,
        _ rho: UnsafePointer<Float>, _ sharpness: UnsafePointer<Float>,
        _ out: UnsafeMutablePointer<Float>, _ K: Int, _ P: Int
    ) {
        withSpecialized(A.self) { op in
            for k in 0..<K {
                let uk = u + k * P, ok = out + k * P
                let w = wn[k], r = rho[k], s = sharpness[k]
                for p in 0..<P { ok[p] = op.evaluate(u: uk[p], xn: xn[p], invXn: invXn[p], wn: w, rho: r, k: s).f }
            }
        }
    }

    /// Calls `body` with a copy of this operator whose magnitude, angular activation (`A`) and
    /// weighting are literals at the call site, once per combination. With `body` inlined, the
    /// optimizer folds the switches inside `evaluate` out of the element loop, so each combination
    /// gets its own straight-line (and, without libm calls, vectorised) loop instead of three
    /// switches per element. Weighted operators do not use the magnitude function, so 6 + 3 copies
    /// per activation. The activation is a type parameter so that each activation's copies sit in
    /// their own specialised function: with all 36 copies in one function, the inliner's size
    /// limit left the last ones unspecialised (scalar, 10-40× slower).
    @inline(__always)
    func withSpecialized<A: AngularKind>(_: A.Type, _ body: (DecoupledOperator) -> Void) {
        var op = self
        op.angular = A.activation
        switch weighting {
        case .none:
            switch magnitude {
            case .sphere: op.magnitude = .sphere; body(op)
            case .ball: op.magnitude = .ball; body(op)
            case .tanh: op.magnitude = .tanh; body(op)
            case .linear: op.magnitude = .linear; body(op)
            case .segmented(let beta): op.magnitude = .segmented(beta: beta); body(op)
            case .logarithmic: op.magnitude = .logarithmic; body(op)
            }
        case .linear: op.weighting = .linear; body(op)
        case .nonlinear: op.weighting = .nonlinear; body(op)
        case .separable: op.weighting = .separable; body(op)
        }
    }

    /// Backward of `forward` for one image. Overwrites `u` with dL/du = dy·∂f/∂u (the GEMMs'
    /// input), adds dL/d||x|| into `dXn` [P] and dL/d||w||, dL/drho, dL/dk into the per-channel
    /// sums `dWn`, `dRho`, `dK` [K], each only where the operator has that input (dL/dk only with a
    /// learnable sharpness). `scratch` holds 3·P floats.
    public func backward(
        dy: UnsafePointer<Float>, u: UnsafeMutablePointer<Float>,
        xn: UnsafePointer<Float>, invXn: UnsafePointer<Float>,
        wn: UnsafePointer<Float>, rho: UnsafePointer<Float>, sharpness: UnsafePointer<Float>,
        dXn: UnsafeMutablePointer<Float>, dWn: UnsafeMutablePointer<Float>,
        dRho: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, channels K: Int, positions P: Int
    ) {
        if isTanhCosine {
            let a = alpha
            for k in 0..<K {
                let r = 1 / rho[k]
                let uk = u + k * P, dyk = dy + k * P
                for p in 0..<P {
                    let t = fastTanh(xn[p] * r)
                    let s = 1 - t * t
                    let uv = uk[p], g = dyk[p], ix = invXn[p]
                    uk[p] = g * a * t * ix
                    dXn[p] += g * a * uv * ix * (s * r - t * ix)
                    scratch[p] = g * s * uv
                }
                dRho[k] += -a * r * r * sumFloats(scratch, P)
            }
            return
        }
        switch angular {
        case .cosine: backwardRows(Cosine.self, dy, u, xn, invXn, wn, rho, sharpness, dXn, dWn, dRho, dK, scratch, K, P)
        case .linear:
            backwardRows(LinearAngle.self, dy, u, xn, invXn, wn, rho, sharpness, dXn, dWn, dRho, dK, scratch, K, P)
        case .sigmoid:
            backwardRows(Sigmoid.self, dy, u, xn, invXn, wn, rho, sharpness, dXn, dWn, dRho, dK, scratch, K, P)
        case .squareCosine:
            backwardRows(SquareCosine.self, dy, u, xn, invXn, wn, rho, sharpness, dXn, dWn, dRho, dK, scratch, K, P)
        }
    }

    /// The general backward loop, compiled once per angular activation `A` (see `withSpecialized`).
    @inline(never)
    func backwardRows<A: AngularKind>(
        _: A.Type, _ dy: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>,
        _ xn: UnsafePointer<Float>, _ invXn: UnsafePointer<Float>,
        _ wn: UnsafePointer<Float>, _ rho: UnsafePointer<Float>,
        _ sharpness: UnsafePointer<Float>,
        _ dXn: UnsafeMutablePointer<Float>, _ dWn: UnsafeMutablePointer<Float>,
        _ dRho: UnsafeMutablePointer<Float>, _ dK: UnsafeMutablePointer<Float>,
        _ scratch: UnsafeMutablePointer<Float>, _ K: Int, _ P: Int
    ) {
        withSpecialized(A.self) { op in
            // The per-channel sums go through scratch rows and `sumFloats`: a running float sum in
            // the element loop would keep it scalar (LLVM may not reassociate it). The rows are
            // written even where the derivative is 0 for this operator: stores behind a flag kept
            // some combinations (TanhConv + sigmoid) scalar, 8× slower.
            let sWn = scratch, sRho = scratch + P, sK = scratch + 2 * P
            for k in 0..<K {
                let uk = u + k * P, dyk = dy + k * P
                let w = wn[k], r = rho[k], sk = sharpness[k]
                for p in 0..<P {
                    let d = op.evaluate(u: uk[p], xn: xn[p], invXn: invXn[p], wn: w, rho: r, k: sk)
                    let g = dyk[p]
                    uk[p] = g * d.dU
                    dXn[p] += g * d.dXn
                    sWn[p] = g * d.dWn
                    sRho[p] = g * d.dRho
                    sK[p] = g * d.dK
                }
                if op.usesFilterNorm { dWn[k] += sumFloats(sWn, P) }
                if op.usesRadius { dRho[k] += sumFloats(sRho, P) }
                // Only a learnable k reads dL/dk; a fixed one gives the sum nothing to do.
                if op.learnableSharpness && op.angular.usesSharpness { dK[k] += sumFloats(sK, P) }
            }
        }
    }
}

/// An angular activation as a type (see `DecoupledOperator.withSpecialized`).
protocol AngularKind { static var activation: AngularActivation { get } }
enum Cosine: AngularKind { static var activation: AngularActivation { .cosine } }
enum LinearAngle: AngularKind { static var activation: AngularActivation { .linear } }
enum Sigmoid: AngularKind { static var activation: AngularActivation { .sigmoid } }
enum SquareCosine: AngularKind { static var activation: AngularActivation { .squareCosine } }
