import DCNetTensor
import Foundation

/// The angular activation g(theta) of a decoupled operator (Liu et al., 2018, §3.2), written as a
/// function of c = cos(theta).
public enum AngularActivation: Hashable, Sendable, Codable, CustomStringConvertible {
    /// g = cos(theta).
    case cosine
    /// g = 1 − 2·theta/π.
    case linear
    /// g = kappa·(1 − e)/(1 + e), e = exp(theta/k − π/(2k)),
    /// kappa = (1 + exp(−π/(2k)))/(1 − exp(−π/(2k))), so that g(0) = 1, g(π/2) = 0, g(π) = −1;
    /// k (sharpness) is the layer's, possibly learnable.
    case sigmoid
    /// g = sign(cos theta)·cos²(theta).
    case squareCosine

    public var usesSharpness: Bool { self == .sigmoid }

    public var description: String {
        switch self {
        case .cosine: return "cos"
        case .linear: return "linear"
        case .sigmoid: return "sigmoid"
        case .squareCosine: return "sqcos"
        }
    }

    /// Smallest 1 − c² used in dtheta/dc = −1/sqrt(1 − c²), so the gradient stays finite at c = ±1.
    @usableFromInline static let minimumSineSquared: Float = 1e-6

    /// g, ∂g/∂c and ∂g/∂k at cosine `c` and sharpness `k`.
    @inlinable @inline(__always)
    public func evaluate(_ cRaw: Float, sharpness k: Float) -> (g: Float, dC: Float, dK: Float) {
        switch self {
        case .cosine:
            return (cRaw, 1, 0)
        case .squareCosine:
            let a = abs(cRaw)
            return (cRaw * a, 2 * a, 0)
        case .linear:
            let c = min(max(cRaw, -1), 1)
            let theta = fastAcos(c)
            let dThetaDc = -1 / (max(1 - c * c, Self.minimumSineSquared)).squareRoot()
            return (1 - 2 * theta / Float.pi, -2 / Float.pi * dThetaDc, 0)
        case .sigmoid:
            let c = min(max(cRaw, -1), 1)
            let theta = fastAcos(c)
            let dThetaDc = -1 / (max(1 - c * c, Self.minimumSineSquared)).squareRoot()
            let halfPi = Float.pi / 2
            // s = (1 − e)/(1 + e) with e = exp(z), z = (theta − π/2)/k; ds/dz = −2·w, w = e/(1 + e)².
            let z = (theta - halfPi) / k
            let e = fastExp(z)
            let q = fastExp(-halfPi / k)
            let kappa = (1 + q) / (1 - q)
            let s = (1 - e) / (1 + e)
            // w as (e/(1 + e))/(1 + e), both factors ≤ 1 in size: for k below about 0.018, z reaches the
            // exponential's clamp (e ≈ e^88), where 2·e·(theta − π/2) and (1 + e)² overflow to inf and
            // their quotient is NaN.
            let w = e / (1 + e) / (1 + e)
            let dSdTheta = -2 * w / k
            // ∂z/∂k = −z/k.
            let dSdK = 2 * w * z / k
            let dKappaDk = q * Float.pi / (k * k * (1 - q) * (1 - q))
            return (kappa * s, kappa * dSdTheta * dThetaDc, dKappaDk * s + kappa * dSdK)
        }
    }
}
