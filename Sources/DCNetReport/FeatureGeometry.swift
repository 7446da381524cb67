import Foundation

/// Angular geometry of penultimate features (`dcnet-dist features`): the paper's claim is that
/// decoupled operators give features whose classes are compact in angle and far apart, so we
/// measure both spreads in angle, the quantity the decoupled operators act on.
public struct FeatureGeometry: Sendable, Equatable {
    /// Mean angle (degrees) between each feature and the centre (mean feature) of its class.
    public var intraClassAngle: Double
    /// Mean angle (degrees) between the centres of two different classes, over all pairs.
    public var interClassAngle: Double
    /// Classes with at least one non-zero feature, ascending.
    public var classes: [Int]
    /// Features that entered (zero vectors have no angle and are left out).
    public var count: Int
    /// Intra-class spread over inter-class separation: smaller is more separable in angle.
    public var ratio: Double { interClassAngle > 0 ? intraClassAngle / interClassAngle : .nan }

    /// `features` row-major [labels.count, dimension]. Nil without any non-zero feature; with a
    /// single class the inter-class angle is NaN (no pair).
    public init?(features: [Float], labels: [Int], dimension: Int) {
        precondition(features.count == labels.count * dimension, "features must hold labels.count × dimension values")
        var sums: [Int: [Double]] = [:]
        var used: [Int] = []
        for (i, k) in labels.enumerated() {
            let row = features[(i * dimension)..<((i + 1) * dimension)]
            guard row.contains(where: { $0 != 0 }) else { continue }
            used.append(i)
            var s = sums[k] ?? [Double](repeating: 0, count: dimension)
            for (d, v) in row.enumerated() { s[d] += Double(v) }
            sums[k] = s
        }
        guard !used.isEmpty else { return nil }
        // The angle to a centre needs only its direction, so the sum serves as the mean.
        let centres = sums
        var intra = 0.0
        for i in used {
            let row = features[(i * dimension)..<((i + 1) * dimension)].map(Double.init)
            intra += Self.angle(row, centres[labels[i]]!)
        }
        let keys = centres.keys.sorted()
        var inter = 0.0, pairs = 0
        for a in keys.indices {
            for b in keys.indices where b > a {
                inter += Self.angle(centres[keys[a]]!, centres[keys[b]]!)
                pairs += 1
            }
        }
        intraClassAngle = intra / Double(used.count)
        interClassAngle = pairs > 0 ? inter / Double(pairs) : .nan
        classes = keys
        count = used.count
    }

    /// Angle in degrees between two vectors; 0 when either is zero. As 2·atan2(||â − b̂||, ||â + b̂||)
    /// rather than acos(â·b̂), which loses all precision for small angles (features of one class
    /// can be a fraction of a degree apart).
    public static func angle(_ a: [Double], _ b: [Double]) -> Double {
        let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard na > 0 && nb > 0 else { return 0 }
        var minus = 0.0, plus = 0.0
        for (x, y) in zip(a, b) {
            let d = x / na - y / nb, s = x / na + y / nb
            minus += d * d; plus += s * s
        }
        return 2 * atan2(minus.squareRoot(), plus.squareRoot()) * 180 / Double.pi
    }
}

/// A 2-D principal-component projection of features, for scatter plots.
public struct FeatureProjection: Sendable {
    /// Unit principal directions (the first explains the most variance), each `dimension` long.
    public var components: [[Double]]
    /// Variance along each component.
    public var variances: [Double]
    /// Per feature: coordinates along the components of the centred feature.
    public var points: [(x: Double, y: Double)]

    /// Power iteration on the covariance, applied as Xᵀ(X v) so the D×D matrix is never formed
    /// (O(N·D) per iteration); the second component is kept orthogonal to the first (deflation).
    /// The start vector is fixed, so the projection is deterministic; its sign is fixed by making
    /// the largest-magnitude coordinate of each component positive.
    public init(features: [Float], dimension: Int, iterations: Int = 300) {
        let n = dimension > 0 ? features.count / dimension : 0
        var mean = [Double](repeating: 0, count: dimension)
        for i in 0..<n { for d in 0..<dimension { mean[d] += Double(features[i * dimension + d]) } }
        for d in 0..<dimension { mean[d] /= Double(max(n, 1)) }
        let x = (0..<(n * dimension)).map { Double(features[$0]) - mean[$0 % dimension] }

        func covarianceTimes(_ v: [Double]) -> [Double] {
            var out = [Double](repeating: 0, count: dimension)
            for i in 0..<n {
                var p = 0.0
                for d in 0..<dimension { p += x[i * dimension + d] * v[d] }
                for d in 0..<dimension { out[d] += p * x[i * dimension + d] }
            }
            return out.map { $0 / Double(max(n - 1, 1)) }
        }
        func normalized(_ v: [Double]) -> [Double]? {
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return norm > 0 ? v.map { $0 / norm } : nil
        }
        var components: [[Double]] = [], variances: [Double] = []
        for c in 0..<min(2, dimension) {
            // Not orthogonal to any particular direction, and different for the two components.
            var v = normalized((0..<dimension).map { 1 + 0.5 * sin(Double($0 * (c + 2) + 1)) })!
            var lambda = 0.0
            for _ in 0..<iterations {
                var w = covarianceTimes(v)
                for u in components {
                    let p = zip(w, u).reduce(0) { $0 + $1.0 * $1.1 }
                    for d in 0..<dimension { w[d] -= p * u[d] }
                }
                lambda = zip(w, v).reduce(0) { $0 + $1.0 * $1.1 }
                guard let next = normalized(w) else { lambda = 0; break }
                let change = zip(next, v).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                v = next
                if change < 1e-14 { break }
            }
            if let big = v.indices.max(by: { abs(v[$0]) < abs(v[$1]) }), v[big] < 0 { v = v.map { -$0 } }
            components.append(v); variances.append(lambda)
        }
        while components.count < 2 { components.append([Double](repeating: 0, count: dimension)); variances.append(0) }
        self.components = components
        self.variances = variances
        points = (0..<n).map { i in
            var p = (x: 0.0, y: 0.0)
            for d in 0..<dimension {
                p.x += x[i * dimension + d] * components[0][d]
                p.y += x[i * dimension + d] * components[1][d]
            }
            return p
        }
    }

    /// A markers-only scatter of the points, one series per class (at most `maxPerClass` points
    /// of each, the first ones, so a full test set still gives a file a browser opens quickly).
    public func scatter(
        labels: [Int], classNames: [String] = [], title: String, maxPerClass: Int = 300
    ) -> SVGPlot {
        var byClass: [Int: [SVGPlot.Point]] = [:]
        for (p, k) in zip(points, labels) where (byClass[k]?.count ?? 0) < maxPerClass {
            byClass[k, default: []].append(SVGPlot.Point(x: p.x, y: p.y))
        }
        let series = byClass.keys.sorted().map { k in
            SVGPlot.Series(name: k < classNames.count ? classNames[k] : "class \(k)", points: byClass[k]!)
        }
        var plot = SVGPlot(
            title: title, xLabel: "principal component 1", yLabel: "principal component 2", series: series)
        plot.showLines = false
        plot.showMarkers = true
        return plot
    }
}
