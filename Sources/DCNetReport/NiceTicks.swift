import Foundation

/// Axis scale with "nice" tick values: steps of 1, 2 or 5 × 10^k (Heckbert, "Nice numbers for
/// graph labels", Graphics Gems 1990), with the axis bounds widened to whole steps.
public struct TickScale: Sendable, Equatable {
    public let lower: Double
    public let upper: Double
    /// Tick step = stepMantissa × 10^stepExponent, kept apart so tick values and the number of
    /// decimals in their labels are computed exactly instead of accumulating 0.1 + 0.2 errors.
    public let stepMantissa: Int
    public let stepExponent: Int
    public let ticks: [Double]

    public var step: Double { Double(stepMantissa) * pow(10, Double(stepExponent)) }

    /// Decimals needed to tell neighbouring ticks apart (0 for steps ≥ 1).
    public var labelDecimals: Int { max(0, -stepExponent) }

    public func label(_ value: Double) -> String {
        let text = String(format: "%.\(labelDecimals)f", value)
        // "-0" and "-0.0" appear when a tick rounds to zero from below.
        if Double(text) == 0 { return String(format: "%.\(labelDecimals)f", 0.0) }
        return text
    }

    /// - Parameters:
    ///   - minimum, maximum: data range; non-finite values fall back to 0…1 and an empty range
    ///     (constant data) is widened around the value so the line is drawn mid-axis.
    ///   - targetTickCount: roughly how many ticks to aim for.
    ///   - integerSteps: never use fractional steps (epochs, steps).
    public init(minimum: Double, maximum: Double, targetTickCount: Int = 6, integerSteps: Bool = false) {
        var (low, high) = minimum.isFinite && maximum.isFinite ? (minimum, maximum) : (0, 1)
        if low > high { swap(&low, &high) }
        if low == high {
            let pad = low == 0 ? 1 : abs(low) * 0.1
            low -= pad
            high += pad
            if integerSteps { low = (low).rounded(.down); high = (high).rounded(.up) }
        }
        let count = max(2, targetTickCount)
        let range = TickScale.niceNumber(high - low, rounding: false)
        var (mantissa, exponent) = TickScale.niceDecomposition(range.value / Double(count - 1), rounding: true)
        if integerSteps && exponent < 0 { (mantissa, exponent) = (1, 0) }

        let step = Double(mantissa) * pow(10, Double(exponent))
        // Tolerance so data at 0.7000000001 does not add a whole extra step.
        let epsilon = step * 1e-9
        let firstIndex = Int(((low + epsilon) / step).rounded(.down))
        let lastIndex = Int(((high - epsilon) / step).rounded(.up))
        func value(_ index: Int) -> Double {
            exponent >= 0
                ? Double(index * mantissa) * pow(10, Double(exponent))
                : Double(index * mantissa) / pow(10, Double(-exponent))
        }
        self.stepMantissa = mantissa
        self.stepExponent = exponent
        self.ticks = (firstIndex...max(firstIndex + 1, lastIndex)).map(value)
        self.lower = ticks.first!
        self.upper = ticks.last!
    }

    /// A nice number near `value`: 1, 2, 5 or 10 times a power of ten.
    public static func niceNumber(_ value: Double, rounding: Bool) -> (value: Double, mantissa: Int, exponent: Int) {
        let (mantissa, exponent) = niceDecomposition(value, rounding: rounding)
        return (Double(mantissa) * pow(10, Double(exponent)), mantissa, exponent)
    }

    static func niceDecomposition(_ value: Double, rounding: Bool) -> (mantissa: Int, exponent: Int) {
        guard value > 0, value.isFinite else { return (1, 0) }
        var exponent = Int(log10(value).rounded(.down))
        let fraction = value / pow(10, Double(exponent))
        var mantissa: Int
        if rounding {
            mantissa = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        } else {
            mantissa = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        }
        if mantissa == 10 { mantissa = 1; exponent += 1 }
        return (mantissa, exponent)
    }
}
