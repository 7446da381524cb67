import DCNetTensor
import Foundation

/// The magnitude function h(||x||) of a decoupled operator (Liu et al., 2018, §3.1). The operator scales
/// it by alpha; SegConv takes alpha inside (see `segmented`). Radius-dependent functions read the
/// operator radius rho from the layer.
public enum MagnitudeFunction: Hashable, Sendable, Codable, CustomStringConvertible {
    /// SphereConv: h = 1 (the output depends on the angle only).
    case sphere
    /// BallConv: h = min(||x||, rho) / rho.
    case ball
    /// TanhConv: h = tanh(||x|| / rho).
    case tanh
    /// LinearConv: h = ||x||.
    case linear
    /// SegConv: alpha·h = alpha·||x|| up to rho, then beta·||x|| + alpha·rho − beta·rho: the slope above
    /// rho is beta itself, not alpha·beta, and the function is continuous at rho (the paper's form).
    case segmented(beta: Float)
    /// LogConv: h = log(1 + ||x||).
    case logarithmic

    /// Whether h depends on the operator radius rho.
    public var usesRadius: Bool {
        switch self {
        case .ball, .tanh, .segmented: return true
        case .sphere, .linear, .logarithmic: return false
        }
    }

    public var description: String {
        switch self {
        case .sphere: return "sphere"
        case .ball: return "ball"
        case .tanh: return "tanh"
        case .linear: return "linear"
        case .segmented(let b): return "seg(beta=\(b))"
        case .logarithmic: return "log"
        }
    }

    /// alpha·h, ∂(alpha·h)/∂||x|| and ∂(alpha·h)/∂rho at patch norm `xn` and radius `rho`.
    /// At the kinks (BallConv and SegConv at ||x|| = rho) the left derivative is used.
    @inlinable @inline(__always)
    public func evaluate(_ xn: Float, radius rho: Float, alpha a: Float) -> (h: Float, dXn: Float, dRho: Float) {
        switch self {
        case .sphere:
            return (a, 0, 0)
        case .ball:
            if xn <= rho { return (a * xn / rho, a / rho, -a * xn / (rho * rho)) }
            return (a, 0, 0)
        case .tanh:
            let t = fastTanh(xn / rho)
            let s = 1 - t * t
            return (a * t, a * s / rho, -a * s * xn / (rho * rho))
        case .linear:
            return (a * xn, a, 0)
        case .segmented(let beta):
            if xn <= rho { return (a * xn, a, 0) }
            return (beta * xn + (a - beta) * rho, beta, a - beta)
        case .logarithmic:
            return (a * fastLog1p(xn), a / (1 + xn), 0)
        }
    }
}
