import DCNetMetrics
import Foundation
import TestSupport
import XCTest

@testable import DCNetReport

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Bands in the SVG renderer, and the seed-averaged learning and attack curves of the report.
final class SeedPlotTests: XCTestCase {
    // MARK: - Renderer

    func testABandIsOneFilledPathInTheSeriesColourUnderTheLines() throws {
        var plot = SVGPlot(
            title: "t", xLabel: "epoch", yLabel: "accuracy (%)",
            series: [
                SVGPlot.Series(
                    name: "a <2 seeds>", points: [.init(x: 1, y: 50), .init(x: 2, y: 60), .init(x: 3, y: 70)],
                    band: [
                        .init(x: 1, lower: 45, upper: 55), .init(x: 2, lower: 58, upper: 62),
                        .init(x: 3, lower: 65, upper: 95),
                    ]),
                SVGPlot.Series(name: "b", xy: [(1, 40), (2, 50), (3, 52)]),
            ])
        plot.bandDescription = "band: min–max over seeds"
        let svg = plot.render()
        let collector = try XCTUnwrap(parseSVG(svg))
        let bands = collector.elements(withClass: "series-band")
        XCTAssertEqual(bands.count, 1, "only the series with a band has one")
        let band = try XCTUnwrap(bands.first)
        XCTAssertEqual(band.attributes["data-series"], "a <2 seeds>")
        let lines = collector.elements(withClass: "series-line")
        XCTAssertEqual(band.attributes["fill"], lines.first?.attributes["stroke"])
        XCTAssertEqual(band.attributes["fill-opacity"], "0.18")
        XCTAssertNil(band.attributes["stroke"])
        // Closed: three points along the upper edge, three back along the lower one.
        let d = try XCTUnwrap(band.attributes["d"])
        XCTAssertEqual(d.filter { $0 == "M" }.count, 1)
        XCTAssertEqual(d.filter { $0 == "L" }.count, 5)
        XCTAssertTrue(d.hasSuffix("Z"))
        // Drawn before (under) every line.
        let bandOffset = try XCTUnwrap(svg.range(of: "class=\"series-band\""))
        let lineOffset = try XCTUnwrap(svg.range(of: "class=\"series-line\""))
        XCTAssertLessThan(bandOffset.lowerBound, lineOffset.lowerBound)
        // The y axis covers the band's upper edge (95), not only the lines (≤ 70).
        XCTAssertGreaterThanOrEqual(
            collector.elements(withClass: "y-tick").compactMap { Double($0.text) }.max() ?? 0, 95)
        // The legend: a band sample for the banded series only, and what the band means.
        XCTAssertEqual(collector.elements(withClass: "legend-band").count, 1)
        XCTAssertEqual(collector.elements(withClass: "legend-note").first?.text, "band: min–max over seeds")
    }

    func testWithoutBandsTheRendererDrawsNoBandOrNote() throws {
        var plot = SVGPlot(
            title: "t", xLabel: "x", yLabel: "y", series: [SVGPlot.Series(name: "a", xy: [(1, 1), (2, 2)])])
        plot.bandDescription = "band: min–max over seeds"
        let svg = plot.render()
        XCTAssertFalse(svg.contains("series-band"))
        XCTAssertFalse(svg.contains("class=\"bands\""))
        XCTAssertFalse(svg.contains("legend-band"))
        XCTAssertFalse(svg.contains("legend-note"), "no note when no series has a band")
        XCTAssertEqual(try XCTUnwrap(parseSVG(svg)).elements(withClass: "series-line").count, 1)
    }

    func testNonFiniteBandPointsBreakTheBandAndAnIsolatedPointIsABar() throws {
        let plot = SVGPlot(
            title: "t", xLabel: "x", yLabel: "y",
            series: [
                SVGPlot.Series(
                    name: "a", points: [.init(x: 1, y: 1), .init(x: 2, y: 2), .init(x: 3, y: 3), .init(x: 4, y: 4)],
                    band: [
                        .init(x: 1, lower: 0.5, upper: 1.5), .init(x: 2, lower: 1.5, upper: 2.5),
                        .init(x: 3, lower: .nan, upper: 3.5), .init(x: 4, lower: 3.5, upper: 4.5),
                    ])
            ])
        let svg = plot.render()
        XCTAssertFalse(svg.lowercased().contains("nan"))
        let d = try XCTUnwrap(try XCTUnwrap(parseSVG(svg)).elements(withClass: "series-band").first?.attributes["d"])
        XCTAssertEqual(d.filter { $0 == "M" }.count, 2, "two closed subpaths: epochs 1–2 and the bar at epoch 4")
        XCTAssertEqual(d.filter { $0 == "Z" }.count, 2)
        XCTAssertEqual(d.filter { $0 == "L" }.count, 3 + 3)
    }

    // MARK: - Learning curves

    /// One seed's epochs: test accuracy, optionally validation accuracy, and training loss.
    private func run(_ name: String, test: [Double], validation: [Double]? = nil, loss: [Double]? = nil) -> Replicate {
        Replicate(
            name: name,
            metrics: RunMetrics(
                epochs: test.indices.map { index in
                    var record = EpochRecord(
                        epoch: index + 1, step: (index + 1) * 10, trainLoss: loss?[index] ?? 1, trainAccuracy: 0.9,
                        testAccuracy: test[index])
                    record.validationAccuracy = validation?[index]
                    return record
                }))
    }

    func testLearningCurvesAreTheMeanOverSeedsWithTheirRange() throws {
        let curves = LearningCurves(
            settings: ["base", "dc", "absent"],
            replicates: [
                "base": [
                    run("base-s1", test: [0.40, 0.50, 0.60], loss: [2.0, 1.5, 1.0]),
                    // Still running: its third epoch is missing, so the mean stops at epoch 2.
                    run("base-s2", test: [0.44, 0.58], loss: [1.8, 1.1]),
                    run("base-s3", test: [0.42, 0.54, 0.70], loss: [1.9, 1.3, 0.9]),
                ],
                "dc": [run("dc-s1", test: [0.50, 0.65, 0.70], loss: [1.2, 1.0, 0.8])],
                "absent": [],
            ])
        XCTAssertFalse(curves.validation)
        XCTAssertEqual(curves.accuracy.map(\.name), ["base (3 seeds)", "dc-s1"], "no line without data")

        let base = curves.accuracy[0].series()
        XCTAssertEqual(base.points.map(\.x), [1, 2])
        XCTAssertEqual(base.points[0].y, 42, accuracy: 1e-9)
        XCTAssertEqual(base.points[1].y, (50.0 + 58 + 54) / 3, accuracy: 1e-9)
        XCTAssertEqual(base.band.map(\.x), [1, 2])
        XCTAssertEqual(base.band[1].lower, 50, accuracy: 1e-9)
        XCTAssertEqual(base.band[1].upper, 58, accuracy: 1e-9)

        let dc = curves.accuracy[1].series()
        XCTAssertEqual(dc.points.map(\.y), [50, 65, 70].map { Double($0) })
        XCTAssertTrue(dc.band.isEmpty, "a single seed is a plain line")

        let loss = curves.loss[0].series()
        XCTAssertEqual(loss.points.map(\.y)[0], (2.0 + 1.8 + 1.9) / 3, accuracy: 1e-12)
        XCTAssertEqual(loss.points.map(\.y)[1], (1.5 + 1.1 + 1.3) / 3, accuracy: 1e-12)
        XCTAssertEqual(loss.band[0].lower, 1.8)
        XCTAssertEqual(loss.band[0].upper, 2.0)
    }

    func testLearningCurvesUseValidationAccuracyOnlyWhenEveryRunHasIt() {
        let withValidation = [
            "base": [
                run("base-s1", test: [0.40, 0.50], validation: [0.30, 0.35]),
                run("base-s2", test: [0.42, 0.52], validation: [0.32, 0.45]),
            ],
            "dc": [run("dc", test: [0.45, 0.55], validation: [0.35, 0.40])],
        ]
        let validation = LearningCurves(settings: ["base", "dc"], replicates: withValidation)
        XCTAssertTrue(validation.validation)
        XCTAssertEqual(validation.accuracy[0].series().points.map(\.y), [31, 40])
        XCTAssertEqual(validation.accuracy[1].series().points.map(\.y), [35, 40])

        var mixed = withValidation
        mixed["dc"] = [run("dc", test: [0.45, 0.55])]
        let test = LearningCurves(settings: ["base", "dc"], replicates: mixed)
        XCTAssertFalse(test.validation, "one run without validation records: test accuracy for all")
        XCTAssertEqual(test.accuracy[0].series().points.map(\.y)[1], 51, accuracy: 1e-9)
    }

    /// The report's group plots: the series the section builds, the band in the SVG, the titles.
    func testGroupPlotsDrawOneBandedMeanLinePerSetting() throws {
        let directory = TempDir("seed-plots")
        let suite = URL(fileURLWithPath: directory.path)
        try write(run("base-s1", test: [0.40, 0.50], validation: [0.30, 0.40], loss: [2.0, 1.0]), in: suite)
        try write(run("base-s2", test: [0.44, 0.56], validation: [0.36, 0.50], loss: [1.6, 0.8]), in: suite)
        try write(run("dc", test: [0.50, 0.60], validation: [0.45, 0.55], loss: [1.0, 0.5]), in: suite)
        let group = ExperimentGroup(name: "Ops", claim: "c", runs: ["base", "dc"], test: .fasterConvergence)
        let rendered = ExperimentReport(suiteDirectory: suite, groups: [group]).render()
        let plots = Dictionary(uniqueKeysWithValues: rendered.plots.map { ($0.fileName, $0.plot) })

        let accuracy = try XCTUnwrap(plots["ops-accuracy.svg"])
        XCTAssertEqual(accuracy.title, "Ops: validation accuracy")
        XCTAssertEqual(accuracy.yLabel, "validation accuracy (%)")
        XCTAssertEqual(accuracy.series.map(\.name), ["base (2 seeds)", "dc"])
        XCTAssertEqual(accuracy.series[0].points.map(\.y)[0], 33, accuracy: 1e-9)
        XCTAssertEqual(accuracy.series[0].points.map(\.y)[1], 45, accuracy: 1e-9)
        XCTAssertEqual(accuracy.series[0].band.map(\.lower)[1], 40, accuracy: 1e-9)
        XCTAssertEqual(accuracy.series[0].band.map(\.upper)[1], 50, accuracy: 1e-9)
        XCTAssertTrue(accuracy.series[1].band.isEmpty)
        let loss = try XCTUnwrap(plots["ops-loss.svg"])
        XCTAssertEqual(loss.series[0].points.map(\.y), [1.8, 0.9])
        XCTAssertEqual(loss.series[0].band.map(\.upper), [2.0, 1.0])

        let svg = try XCTUnwrap(parseSVG(accuracy.render()))
        XCTAssertEqual(
            svg.elements(withClass: "series-band").compactMap { $0.attributes["data-series"] }, ["base (2 seeds)"])
        XCTAssertEqual(svg.elements(withClass: "series-line").count, 2)
        XCTAssertEqual(svg.elements(withClass: "legend-note").first?.text, SeedCurve.bandDescription)
        XCTAssertTrue(rendered.markdown.contains("![Ops: validation accuracy per epoch](ops-accuracy.svg)"))
        XCTAssertTrue(rendered.markdown.contains("the shaded band is the min–max range over the seeds"))
        XCTAssertTrue(rendered.markdown.contains("Accuracy: validation accuracy (held-out training images)."))

        // The same runs without validation records: test accuracy, and single seeds have no band.
        let plain = TempDir("seed-plots-test")
        let plainSuite = URL(fileURLWithPath: plain.path)
        try write(run("base", test: [0.40, 0.50]), in: plainSuite)
        try write(run("dc", test: [0.50, 0.60]), in: plainSuite)
        let plainRendered = ExperimentReport(suiteDirectory: plainSuite, groups: [group]).render()
        let testPlot = try XCTUnwrap(plainRendered.plots.first { $0.fileName == "ops-accuracy.svg" }?.plot)
        XCTAssertEqual(testPlot.title, "Ops: test accuracy")
        XCTAssertEqual(testPlot.yLabel, "test accuracy (%)")
        XCTAssertEqual(testPlot.series.map(\.name), ["base", "dc"])
        XCTAssertEqual(testPlot.series[1].points.map(\.y), [50, 60])
        XCTAssertFalse(testPlot.render().contains("series-band"))
        XCTAssertFalse(plainRendered.markdown.contains("shaded band"))
    }

    // MARK: - Attack curves

    private func attack(
        _ method: String = "fgsm", steps: Int = 1, source: String? = nil, eps: Double, clean: Double, adv: Double
    ) -> AttackRecord {
        AttackRecord(
            method: method, mode: source == nil ? .whiteBox : .blackBox, source: source, epsilonPixels: eps,
            steps: steps, cleanAccuracy: clean, adversarialAccuracy: adv)
    }

    /// Two seeds of base and tanh, white-box and black-box in both directions with paired seeds;
    /// tanh-s2 was also attacked from base-s1, which the pairing by seed leaves out.
    private var attackedSeeds: [String: [Replicate]] {
        func seed(_ name: String, _ attacks: [AttackRecord]) -> Replicate {
            Replicate(
                name: name,
                metrics: RunMetrics(
                    epochs: [EpochRecord(epoch: 1, trainLoss: 1, trainAccuracy: 0.9, testAccuracy: 0.8)],
                    attacks: attacks))
        }
        func curve(_ source: String? = nil, clean: Double, _ eps2: Double, _ eps8: Double) -> [AttackRecord] {
            [
                attack(source: source, eps: 2, clean: clean, adv: eps2),
                attack(source: source, eps: 8, clean: clean, adv: eps8),
            ]
        }
        return [
            "base": [
                seed(
                    "base-s1",
                    curve(clean: 0.80, 0.30, 0.10) + curve("tanh-s1", clean: 0.80, 0.50, 0.30)
                        + [attack("bim", steps: 5, eps: 2, clean: 0.80, adv: 0.05)]),
                seed("base-s2", curve(clean: 0.82, 0.34, 0.14) + curve("tanh-s2", clean: 0.82, 0.56, 0.32)),
            ],
            "tanh": [
                seed(
                    "tanh-s1",
                    curve(clean: 0.78, 0.40, 0.20) + curve("base-s1", clean: 0.78, 0.60, 0.40)),
                seed(
                    "tanh-s2",
                    curve(clean: 0.76, 0.44, 0.26) + curve("base-s1", clean: 0.76, 0.10, 0.05)
                        + curve("base-s2", clean: 0.76, 0.64, 0.46)),
            ],
        ]
    }

    func testAttackCurvesPairBlackBoxSeedsInBothDirections() throws {
        let all = AttackCurves.build(settings: ["base", "tanh"], replicates: attackedSeeds)
        XCTAssertEqual(all.map(\.method.title), ["BIM-5", "FGSM"])
        XCTAssertEqual(all[0].series.map(\.name), ["base, white-box"], "one seed: no count, no band")
        XCTAssertTrue(all[0].series[0].band.isEmpty)
        XCTAssertEqual(all[0].series[0].points.map(\.x), [0, 2])

        let fgsm = all[1]
        XCTAssertEqual(
            fgsm.series.map(\.name),
            [
                "base, white-box (2 seeds)", "tanh, white-box (2 seeds)", "base ← tanh (2 seeds)",
                "tanh ← base (2 seeds)",
            ])
        XCTAssertEqual(fgsm.lines[3].runs.map(\.target), ["tanh-s1", "tanh-s2"])
        XCTAssertEqual(fgsm.lines[3].runs.map(\.source), ["base-s1", "base-s2"], "paired by seed")
        XCTAssertEqual(fgsm.lines[2].runs.map(\.source), ["tanh-s1", "tanh-s2"])

        func check(_ series: SVGPlot.Series, mean: [Double], lower: [Double], upper: [Double], _ line: UInt = #line) {
            XCTAssertEqual(series.points.map(\.x), [0, 2, 8], line: line)
            XCTAssertEqual(series.band.map(\.x), [0, 2, 8], line: line)
            for i in 0..<3 {
                XCTAssertEqual(series.points[i].y, mean[i], accuracy: 1e-9, "mean at \(i)", line: line)
                XCTAssertEqual(series.band[i].lower, lower[i], accuracy: 1e-9, "min at \(i)", line: line)
                XCTAssertEqual(series.band[i].upper, upper[i], accuracy: 1e-9, "max at \(i)", line: line)
            }
        }
        // tanh attacked with the baseline's examples: (60, 64) at ε = 2 and (40, 46) at ε = 8; ε = 0 is clean.
        check(fgsm.series[3], mean: [77, 62, 43], lower: [76, 60, 40], upper: [78, 64, 46])
        // The baseline attacked with tanh's examples.
        check(fgsm.series[2], mean: [81, 53, 31], lower: [80, 50, 30], upper: [82, 56, 32])
        // White-box tanh.
        check(fgsm.series[1], mean: [77, 42, 23], lower: [76, 40, 20], upper: [78, 44, 26])
    }

    func testAttackSectionDrawsOnePlotPerMethodAndAMeanTable() throws {
        let directory = TempDir("seed-attacks")
        let suite = URL(fileURLWithPath: directory.path)
        for (_, seeds) in attackedSeeds {
            for seed in seeds { try write(seed, in: suite) }
        }
        let group = ExperimentGroup(name: "Robust", claim: "c", runs: ["base", "tanh"], test: .moreRobust)
        let rendered = ExperimentReport(suiteDirectory: suite, groups: [group]).render()
        let attackFiles = rendered.plots.map(\.fileName).filter { $0.hasPrefix("attack-") }
        XCTAssertEqual(attackFiles, ["attack-bim-5.svg", "attack-fgsm.svg"])
        let fgsm = try XCTUnwrap(rendered.plots.first { $0.fileName == "attack-fgsm.svg" }?.plot)
        XCTAssertEqual(fgsm.series.count, 4)
        XCTAssertEqual(fgsm.series[3].name, "tanh ← base (2 seeds)")
        XCTAssertEqual(fgsm.series[3].points.map(\.y)[1], 62, accuracy: 1e-9)
        let svg = try XCTUnwrap(parseSVG(fgsm.render()))
        XCTAssertEqual(svg.elements(withClass: "series-band").count, 4)

        let markdown = rendered.markdown
        assertContains(markdown, "![FGSM: accuracy versus epsilon, mean over seeds](attack-fgsm.svg)")
        assertContains(markdown, "| Model | Seeds | Clean | ε = 2 | ε = 8 |")
        // sd of (0.60, 0.64) = 2.83 pp, of (0.40, 0.46) = 4.24 pp, of (0.78, 0.76) = 1.41 pp.
        assertContains(markdown, "| tanh ← base | 2 | 77.0% ± 1.4 | 62.0% ± 2.8 | 43.0% ± 4.2 |")
        assertContains(markdown, "| base ← tanh | 2 | 81.0% ± 1.4 | 53.0% ± 4.2 | 31.0% ± 1.4 |")
        assertContains(markdown, "| base, white-box | 1 | 80.0% | 5.0% |")
        // The per-run tables stay.
        assertContains(markdown, "### FGSM, black-box")
        assertContains(markdown, "| tanh-s2 ← base-s1 | 76.0% | 10.0% | 5.0% |")
    }

    // MARK: - Helpers

    /// Writes a replicate's epochs to `<suite>/<name>/metrics.jsonl` and its attacks to attacks.jsonl.
    private func write(_ replicate: Replicate, in suite: URL) throws {
        try writeRecords(epochLines(replicate.metrics.epochs), run: replicate.name, in: suite)
        if !replicate.metrics.attacks.isEmpty {
            let attacks = try replicate.metrics.attacks.map { try MetricsRecord.attack($0).jsonLine() }
            try writeRecords(attacks, run: replicate.name, in: suite, file: MetricsLog.attacksFileName)
        }
    }
}
