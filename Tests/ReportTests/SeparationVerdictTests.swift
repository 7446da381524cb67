import DCNetMetrics
import Foundation
import TestSupport
import XCTest

@testable import DCNetReport

/// The feature-separation claim: the intra/inter-class angle ratio per seed, judged like the other
/// claims (2 standard errors with seeds on both sides, "suggests" at most with a single seed).
final class SeparationVerdictTests: XCTestCase {
    private let evaluator = ClaimEvaluator(noiseMargin: 0.005, accuracyThresholds: [0.5, 0.6, 0.7])

    /// Geometry with the given ratio: an inter-class angle of 60° and an intra-class one of 60·ratio.
    private func geometry(ratio: Double) -> FeatureGeometry {
        var g = FeatureGeometry(features: [1, 0, 0, 1], labels: [0, 1], dimension: 2)!
        g.intraClassAngle = 60 * ratio
        g.interClassAngle = 60
        return g
    }

    /// Seeds `<setting>-s1...` with one epoch each and these ratios (nil: no features).
    private func seeds(_ setting: String, ratios: [Double?]) -> [Replicate] {
        ratios.enumerated().map { index, ratio in
            Replicate(
                name: "\(setting)-s\(index + 1)",
                metrics: RunMetrics(epochs: [EpochRecord(epoch: 1, trainLoss: 1, trainAccuracy: 0.8, testAccuracy: 0.8)]
                ),
                featureGeometry: ratio.map { geometry(ratio: $0) })
        }
    }

    private let group = ExperimentGroup(
        name: "Feature separation", claim: "c", runs: ["base", "dc"], baseline: "base", test: .betterSeparation)

    private func only(_ base: [Double?], _ dc: [Double?]) throws -> Comparison {
        let result = evaluator.evaluate(
            group, replicates: ["base": seeds("base", ratios: base), "dc": seeds("dc", ratios: dc)])
        return try singleComparison(result)
    }

    func testTheTestKindDecodesAndEncodes() throws {
        let json = #"{"name":"s","claim":"c","runs":["a","b"],"baseline":"a","test":{"kind":"better-separation"}}"#
        let decoded = try JSONDecoder().decode(ExperimentGroup.self, from: Data(json.utf8))
        XCTAssertEqual(decoded.test, .betterSeparation)
        let again = try JSONDecoder().decode(ExperimentGroup.self, from: JSONEncoder().encode(decoded))
        XCTAssertEqual(again, decoded)
    }

    func testSmallerRatioBeyondTwoStandardErrorsIsSupported() throws {
        let comparison = try only([0.40, 0.41, 0.42], [0.30, 0.31, 0.32])
        XCTAssertEqual(comparison.verdict, .supported)
        let r = try XCTUnwrap(comparison.replicates)
        XCTAssertEqual(r.measure, .featureAngleRatio)
        XCTAssertEqual(r.values.candidate.runs, ["dc-s1", "dc-s2", "dc-s3"])
        XCTAssertEqual(r.values.candidate.values[1], 0.31, accuracy: 1e-12)
        XCTAssertEqual(r.difference, -0.10, accuracy: 1e-12)
        XCTAssertEqual(r.standardError ?? 0, (2 * 0.0001 / 3).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(r.direction(noiseMargin: 0.005), .ahead, "smaller is the claimed direction")
        guard case .separation(let s) = comparison.evidence else { return XCTFail("\(comparison.evidence)") }
        XCTAssertEqual(s.runs, Paired("dc-s1", "base-s1"))
        XCTAssertEqual(s.ratio.candidate, 0.30, accuracy: 1e-12)
        XCTAssertEqual(s.intraClassAngle.baseline, 24, accuracy: 1e-9)
        XCTAssertEqual(s.direction, .ahead)
    }

    func testLargerRatioBeyondTwoStandardErrorsContradicts() throws {
        XCTAssertEqual(try only([0.40, 0.41, 0.42], [0.50, 0.52, 0.51]).verdict, .contradicted)
    }

    func testDifferenceWithinTwoStandardErrorsIsInconclusive() throws {
        // 0.02 smaller on average, far beyond the single-seed margin of 0.005, but the seeds spread by
        // 0.04: SE = sqrt(2 · 0.0016 / 3) = 0.033, 2 SE = 0.065.
        let comparison = try only([0.36, 0.40, 0.44], [0.34, 0.38, 0.42])
        XCTAssertEqual(comparison.verdict, .inconclusive)
        XCTAssertEqual(comparison.replicates?.difference ?? 0, -0.02, accuracy: 1e-12)
    }

    func testASingleSeedOnlySuggests() throws {
        XCTAssertEqual(try only([0.40], [0.30]).verdict, .suggests)
        XCTAssertEqual(try only([0.40], [0.50]).verdict, .suggestsAgainst)
        XCTAssertEqual(try only([0.40], [0.403]).verdict, .inconclusive, "within ±0.005 of the ratio")
        let oneSide = try only([0.40, 0.41, 0.42], [0.20])
        XCTAssertEqual(oneSide.verdict, .suggests, "one candidate seed: no standard error")
        XCTAssertEqual(oneSide.replicates?.isSingleSeed, true)
    }

    func testWithoutFeaturesTheComparisonIsNotEvaluated() throws {
        let none = try only([nil, nil], [0.3, 0.3])
        XCTAssertEqual(none.verdict, .notEvaluated)
        XCTAssertEqual(none.evidence, .unavailable(.noFeatures(["base-s1", "base-s2"])))
        // A seed without features is left out; the others still decide.
        let partial = try only([0.40, 0.41, 0.42], [nil, 0.30, 0.32])
        XCTAssertEqual(partial.verdict, .supported)
        XCTAssertEqual(partial.replicates?.values.candidate.runs, ["dc-s2", "dc-s3"])
        guard case .separation(let s) = partial.evidence else { return XCTFail("\(partial.evidence)") }
        XCTAssertEqual(s.runs.candidate, "dc-s2", "the first seed with features is the evidence")
        XCTAssertEqual(s.runsWithoutFeatures, ["dc-s1"])
    }

    // MARK: - In the report

    private func writeSuite(_ suite: URL, settings: [String: Int]) throws {
        for (setting, count) in settings {
            for s in 1...count {
                let epoch = EpochRecord(epoch: 1, trainLoss: 1, trainAccuracy: 0.8, testAccuracy: 0.8)
                try writeRecords(epochLines([epoch]), run: "\(setting)-s\(s)", in: suite)
            }
        }
    }

    private func entry(_ run: String, ratio: Double) -> FeatureGeometrySection.Entry {
        let plot = SVGPlot(
            title: run, xLabel: "x", yLabel: "y", series: [SVGPlot.Series(name: "a", xy: [(0, 0), (1, 1)])])
        return .init(
            run: run, images: 2, geometry: geometry(ratio: ratio),
            plotFile: FeatureGeometrySection.plotFileName(run: run), plot: plot)
    }

    func testReportGivesTheVerdictAndShowsTheScattersSideBySide() throws {
        let directory = TempDir("separation")
        let suite = URL(fileURLWithPath: directory.path)
        try writeSuite(suite, settings: ["baseline": 3, "tanh": 3])
        let json = #"""
            [{"name": "Feature separation", "claim": "DCNets separate classes better.", "runs": ["baseline", "tanh"],
              "baseline": "baseline", "test": {"kind": "better-separation"}}]
            """#
        var report = ExperimentReport(
            suiteDirectory: suite, groups: try JSONDecoder().decode([ExperimentGroup].self, from: Data(json.utf8)))
        var features: [String: FeatureGeometrySection.Entry] = [:]
        for (s, ratio) in [0.40, 0.41, 0.42].enumerated() {
            features["baseline-s\(s + 1)"] = entry("baseline-s\(s + 1)", ratio: ratio)
        }
        for (s, ratio) in [0.30, 0.31, 0.32].enumerated() {
            features["tanh-s\(s + 1)"] = entry("tanh-s\(s + 1)", ratio: ratio)
        }
        report.features = features
        let output = try report.write()
        let markdown = output.markdown
        assertContains(
            markdown,
            "- tanh vs baseline over 3 vs 3 seeds, intra/inter-class angle ratio of the features (smaller: better "
                + "separated): 0.310 ± 0.010 vs 0.410 ± 0.010 (mean ± sd; per seed: 0.300, 0.310, 0.320 vs 0.400, "
                + "0.410, 0.420); difference -0.100 (standard error 0.008) — supports the paper's claim of better "
                + "feature separation (beyond 2 standard errors).")
        assertContains(markdown, "_Verdict quantity: the intra/inter-class angle ratio")
        // The feature section: the first seed of each setting in one row, baseline first; the rest listed.
        assertContains(
            markdown,
            "| baseline-s1 (baseline) | tanh-s1 |\n|:---:|:---:|\n"
                + "| ![features of baseline-s1](features-baseline-s1.svg) | "
                + "![features of tanh-s1](features-tanh-s1.svg) |")
        XCTAssertTrue(
            markdown.contains("The other runs' features:\n\n![features of baseline-s2](features-baseline-s2.svg)"))
        XCTAssertFalse(markdown.contains("\n![features of tanh-s1]"), "shown once, in the side-by-side row")
        assertContains(markdown, "| tanh-s3 | 2 | 19.20° | 60.00° | 0.320 |")
        // The scatters are written with the other plots.
        XCTAssertTrue(output.plotFiles.map(\.lastPathComponent).contains("features-tanh-s2.svg"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: suite.appendingPathComponent("features-tanh-s2.svg").path))

        // Without features the group is not evaluated, and the report is still written.
        report.features = nil
        let without = try report.write().markdown
        assertContains(
            without,
            "- tanh vs baseline: not evaluated: no features for `tanh-s1`, `tanh-s2`, `tanh-s3`, `baseline-s1`, "
                + "`baseline-s2`, `baseline-s3`")
        XCTAssertFalse(without.contains("## Feature geometry"))
    }

    func testSingleSeedSentenceKeepsTheAnglesAndTheRatioMargin() throws {
        let directory = TempDir("separation1")
        let suite = URL(fileURLWithPath: directory.path)
        try writeSuite(suite, settings: ["baseline": 1, "tanh": 1])
        var report = ExperimentReport(
            suiteDirectory: suite,
            groups: [ExperimentGroup(name: "sep", claim: "c", runs: ["baseline", "tanh"], test: .betterSeparation)])
        report.features = ["baseline-s1": entry("baseline-s1", ratio: 0.4), "tanh-s1": entry("tanh-s1", ratio: 0.402)]
        let markdown = try report.write().markdown
        assertContains(
            markdown,
            "- tanh vs baseline: intra/inter-class angle ratio of the penultimate features 0.402 vs 0.400 "
                + "(smaller: better separated; intra-class 24.12° vs 24.00°, inter-class 60.00° vs 60.00°) — "
                + "inconclusive: no difference beyond ±0.005 in the ratio; the paper's claim of better feature "
                + "separation is not supported.")
    }
}
