import DCNetTensor
import Foundation

/// The magnitude function h(||x||) of a decoupled operator (Liu et al., 2018, §3.1), before the
/// scale alpha. Radius-dependent functions read the operator radius rho from the layer.
public enum MagnitudeFunction: Hashable, Sendable, Codable, CustomStringConvertible {
    /// SphereConv: h = 1 (the output depends on the angle only).
    case sphere
    /// BallConv: h = min(||x||, rho) / rho.
    case ball
    /// TanhConv: h = tanh(||x|| / rho).
    case tanh
    /// LinearConv: h = ||x||.
    case linear
    /// SegConv: h = ||x|| up to rho, then slope beta: beta·||x|| + rho − beta·rho.
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

    /// h, ∂h/∂||x|| and ∂h/∂rho at patch norm `xn` and radius `rho`.
    /// At the kinks (BallConv and SegConv at ||x|| = rho) the left derivative is used.
    @inlinable @inline(__always)
    public func evaluate(_ xn: Float, radius rho: Float) -> (h: Float, dXn: Float, dRho: Float) {
        switch self {
        case .sphere:
            return (1, 0, 0)
        case .ball:
            if xn <= rho { return (xn / rho, 1 / rho, -xn / (rho * rho)) }
            return (1, 0, 0)
        case .tanh:
            let t = fastTanh(xn / rho)
            let s = 1 - t * t
            return (t, s / rho, -s * xn / (rho * rho))
        case .linear:
            return (xn, 1, 0)
        case .segmented(let beta):
            if xn <= rho { return (xn, 1, 0) }
            return (beta * xn + rho - beta * rho, beta, 1 - beta)
        case .logarithmic:
            return (fastLog1p(xn), 1 / (1 + xn), 0)
        }
    }
}
