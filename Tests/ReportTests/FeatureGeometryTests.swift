import Foundation
import TestSupport
import XCTest

@testable import DCNetReport

/// The feature statistics on synthetic features whose angles are known by construction.
final class FeatureGeometryTests: XCTestCase {
    /// Three classes in R³, each a pair of features θ = 10° either side of its centre direction (so
    /// the mean keeps that direction): e1, e3 and (e1 + e3)/√2. Centres are 90°, 45° and 45° apart.
    /// Pairs get different lengths (angles ignore length) and a zero feature is left out.
    func testKnownAngles() throws {
        let theta = 10 * Double.pi / 180
        let (c, s) = (cos(theta), sin(theta))
        let r = 1 / 2.0.squareRoot()
        var features: [Float] = [], labels: [Int] = []
        let centres: [[Double]] = [[1, 0, 0], [0, 0, 1], [r, 0, r]]
        for (k, centre) in centres.enumerated() {
            for length in [1.0, 3.5] {
                for sign in [1.0, -1.0] {
                    features += [c * centre[0], sign * s, c * centre[2]].map { Float(length * $0) }
                    labels.append(k)
                }
            }
        }
        features += [0, 0, 0]; labels.append(1)
        let g = try XCTUnwrap(FeatureGeometry(features: features, labels: labels, dimension: 3))
        XCTAssertEqual(g.count, 12, "the zero feature has no angle")
        XCTAssertEqual(g.classes, [0, 1, 2])
        XCTAssertEqual(g.intraClassAngle, 10, accuracy: 1e-4)
        XCTAssertEqual(g.interClassAngle, 60, accuracy: 1e-4)
        XCTAssertEqual(g.ratio, 1.0 / 6, accuracy: 1e-6)
    }

    func testDegenerateInputs() {
        XCTAssertNil(FeatureGeometry(features: [0, 0, 0, 0], labels: [0, 1], dimension: 2))
        let one = FeatureGeometry(features: [1, 0, 0, 1], labels: [3, 3], dimension: 2)
        XCTAssertEqual(one?.intraClassAngle ?? 0, 45, accuracy: 1e-9)
        XCTAssertTrue(one?.interClassAngle.isNaN ?? false, "one class: no pair of centres")
        XCTAssertEqual(FeatureGeometry.angle([1, 0], [-2, 0]), 180, accuracy: 1e-12)
    }

    /// Points on a known line in R⁵ (plus a small component along a second direction): the first
    /// component is the line's direction, the coordinates along it are the centred positions, and
    /// the second component is the orthogonal direction the small component lies along.
    func testPCARecoversAKnownLine() {
        let u = [1.0, 2, -2, 0, 4].map { $0 / 5.0 }  // unit
        let v = [0.0, 2, 2, 1, 0].map { $0 / 3.0 }  // unit, orthogonal to u
        let origin = [3.0, -1, 0.5, 2, 1]
        let ts = (0..<40).map { Double($0) * 0.25 - 3 }
        var features: [Float] = []
        for (i, t) in ts.enumerated() {
            let small = 0.05 * sin(Double(i) * 1.7)
            features += (0..<5).map { Float(origin[$0] + t * u[$0] + small * v[$0]) }
        }
        let p = FeatureProjection(features: features, dimension: 5)
        let dot = zip(p.components[0], u).reduce(0) { $0 + $1.0 * $1.1 }
        XCTAssertEqual(abs(dot), 1, accuracy: 1e-6, "first component \(p.components[0]) is not ±u")
        let mean = ts.reduce(0, +) / Double(ts.count)
        let sign = dot < 0 ? -1.0 : 1.0
        for (point, t) in zip(p.points, ts) { XCTAssertEqual(point.x, sign * (t - mean), accuracy: 1e-4) }
        let variance = ts.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(ts.count - 1)
        XCTAssertEqual(p.variances[0], variance, accuracy: 1e-4 * variance)
        let dot2 = zip(p.components[1], v).reduce(0) { $0 + $1.0 * $1.1 }
        XCTAssertEqual(abs(dot2), 1, accuracy: 1e-3, "second component \(p.components[1]) is not ±v")
        XCTAssertEqual(zip(p.components[0], p.components[1]).reduce(0) { $0 + $1.0 * $1.1 }, 0, accuracy: 1e-9)
        XCTAssertLessThan(p.variances[1], 0.01 * p.variances[0])
    }

    /// The scatter is markers only: a circle per point (capped per class), no lines, marker legend.
    func testScatterIsMarkersOnly() {
        let features: [Float] = (0..<30).flatMap { i in [Float(i), Float(i % 3), Float(i % 5)] }
        let labels = (0..<30).map { $0 % 3 }
        let plot = FeatureProjection(features: features, dimension: 3)
            .scatter(labels: labels, classNames: ["a", "b"], title: "t", maxPerClass: 8)
        XCTAssertEqual(plot.series.map(\.name), ["a", "b", "class 2"])
        XCTAssertEqual(plot.series.map(\.points.count), [8, 8, 8])
        let svg = plot.render()
        XCTAssertFalse(svg.contains("series-line"))
        XCTAssertEqual(svg.components(separatedBy: "class=\"marker\"").count - 1, 24)
        XCTAssertEqual(svg.components(separatedBy: "legend-marker").count - 1, 3)
    }
}

/// The report section: a row per run (a dash without geometry), and a link per plot.
final class FeatureGeometrySectionTests: XCTestCase {
    func testTableAndPlots() throws {
        let g = try XCTUnwrap(FeatureGeometry(features: [1, 0, 1, 0.1, 0, 1], labels: [0, 0, 1], dimension: 2))
        let md = FeatureGeometrySection.markdown([
            .init(
                run: "tanh|cos", images: 3, geometry: g, plotFile: FeatureGeometrySection.plotFileName(run: "tanh|cos")),
            .init(run: "empty", images: 0, geometry: nil, plotFile: nil),
        ])
        XCTAssertTrue(md.contains("## Feature geometry"))
        assertContains(md, "| tanh\\|cos | 3 | 1.90° | 87.14° | 0.022 |")
        assertContains(md, "| empty | 0 | — | — | — |")
        assertContains(md, "(features-tanh-cos.svg)")
        XCTAssertEqual(md.components(separatedBy: "![").count - 1, 1)
        XCTAssertTrue(FeatureGeometrySection.markdown([]).contains("No `<run>/features.safetensors`"))
    }

    /// Small angles keep their precision (acos would round 1e-4° to 0 or a few times too much).
    func testSmallAnglesArePrecise() {
        let t = 1e-4 * Double.pi / 180
        XCTAssertEqual(FeatureGeometry.angle([1, 0], [cos(t), sin(t)]), 1e-4, accuracy: 1e-10)
    }
}

/// `features.geometry.json`: what a suite's committed records keep of a features file.
final class FeatureGeometryRecordTests: XCTestCase {
    func testRoundTripKeepsTheAnglesAndWritesTheRatio() throws {
        let dir = TempDir("geometry-record")
        let geometry = try XCTUnwrap(
            FeatureGeometry(features: [1, 0, 0.9, 0.1, 0, 1, 0.2, 0.8], labels: [0, 0, 1, 1], dimension: 2))
        let record = FeatureGeometryRecord(images: 4, geometry: geometry, source: "runs/a/features.safetensors")
        try record.write(to: dir.file("r.json"))
        XCTAssertEqual(try FeatureGeometryRecord.read(dir.file("r.json")), record)
        let text = try String(contentsOfFile: dir.file("r.json"), encoding: .utf8)
        assertContains(text, "\"ratio\" : \(geometry.ratio)")

        // One class: no inter-class angle (NaN), written as null, read back as NaN.
        let single = try XCTUnwrap(FeatureGeometry(features: [1, 0, 0.9, 0.1], labels: [3, 3], dimension: 2))
        try FeatureGeometryRecord(images: 2, geometry: single, source: "x").write(to: dir.file("s.json"))
        let back = try XCTUnwrap(try FeatureGeometryRecord.read(dir.file("s.json")).geometry)
        XCTAssertTrue(back.interClassAngle.isNaN)
        XCTAssertEqual(back.intraClassAngle, single.intraClassAngle)
        XCTAssertEqual(back.classes, [3])
    }

    func testPathAndErrorsNameTheFile() throws {
        XCTAssertEqual(
            FeatureGeometryRecord.path(forFeatures: "/s/a/features.safetensors"), "/s/a/features.geometry.json")
        XCTAssertEqual(FeatureGeometryRecord.path(forFeatures: "/s/a/f.bin"), "/s/a/f.bin.geometry.json")
        let dir = TempDir("geometry-record-bad")
        dir.write("bad.json", Array(#"{"images": 3}"#.utf8))
        XCTAssertThrowsError(try FeatureGeometryRecord.read(dir.file("bad.json"))) {
            XCTAssertTrue("\($0)".contains("bad.json") && "\($0)".contains("not a feature geometry record"), "\($0)")
        }
        XCTAssertThrowsError(try FeatureGeometryRecord.read(dir.file("missing.json"))) {
            XCTAssertTrue("\($0)".contains("missing.json"), "\($0)")
        }
    }
}
