import Foundation
import TestSupport
import XCTest

@testable import DCNetReport

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Collects elements, their attributes and text while parsing, to check the SVG structure.
final class SVGCollector: NSObject, XMLParserDelegate {
    struct Element { let name: String; let attributes: [String: String]; var text: String }
    private(set) var elements: [Element] = []
    private var stack: [Int] = []
    private(set) var error: Error?

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String] = [:]
    ) {
        elements.append(Element(name: elementName, attributes: attributes, text: ""))
        stack.append(elements.count - 1)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        stack.removeLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let current = stack.last { elements[current].text += string }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { error = parseError }

    func elements(named name: String) -> [Element] { elements.filter { $0.name == name } }
    func elements(withClass cssClass: String) -> [Element] { elements.filter { $0.attributes["class"] == cssClass } }
}

/// Parses `svg` as XML and fails the test if it is not well-formed.
func parseSVG(_ svg: String, file: StaticString = #filePath, line: UInt = #line) -> SVGCollector? {
    let parser = XMLParser(data: Data(svg.utf8))
    let collector = SVGCollector()
    parser.delegate = collector
    let ok = parser.parse()
    XCTAssertTrue(
        ok, "SVG is not well-formed XML: \(String(describing: parser.parserError ?? collector.error))",
        file: file, line: line)
    return ok ? collector : nil
}

final class SVGPlotTests: XCTestCase {
    func testWellFormedWithOnePathPerNonEmptySeriesAndEscapedText() throws {
        let plot = SVGPlot(
            title: "<tanh & \"cos\">", xLabel: "epoch's", yLabel: "accuracy (%) < 100",
            series: [
                .init(name: "baseline", xy: [(1, 40), (2, 55), (3, 61)]),
                .init(name: "tanh & cos", xy: [(1, 45), (2, 58), (3, 66)]),
                .init(name: "empty <run>", points: []),
                .init(name: "only NaN", xy: [(1, .nan), (2, .infinity)]),
            ])
        let svg = plot.render()
        let collector = try XCTUnwrap(parseSVG(svg))

        let root = try XCTUnwrap(collector.elements.first)
        XCTAssertEqual(root.name, "svg")
        XCTAssertEqual(root.attributes["xmlns"], "http://www.w3.org/2000/svg")
        XCTAssertEqual(root.attributes["version"], "1.1")

        let lines = collector.elements(withClass: "series-line")
        XCTAssertEqual(lines.count, 2, "one path per series with finite data")
        XCTAssertEqual(lines.map { $0.attributes["data-series"] }, ["baseline", "tanh & cos"])
        XCTAssertNotEqual(lines[0].attributes["stroke"], lines[1].attributes["stroke"], "distinct colours")
        XCTAssertNotEqual(
            lines[0].attributes["stroke-dasharray"], lines[1].attributes["stroke-dasharray"], "distinct dashes")
        XCTAssertEqual(lines[0].attributes["d"]?.filter { $0 == "L" }.count, 2)

        // The parser un-escapes entities, so the text equals the original strings.
        XCTAssertEqual(collector.elements(withClass: "title").first?.text, "<tanh & \"cos\">")
        XCTAssertEqual(collector.elements(named: "title").first?.text, "<tanh & \"cos\">")
        XCTAssertEqual(collector.elements(withClass: "x-label").first?.text, "epoch's")
        XCTAssertEqual(collector.elements(withClass: "y-label").first?.text, "accuracy (%) < 100")
        XCTAssertEqual(
            collector.elements(withClass: "legend-label").map(\.text),
            ["baseline", "tanh & cos", "empty <run> (no data)", "only NaN (no data)"])
        XCTAssertTrue(svg.contains("&lt;tanh &amp; &quot;cos&quot;&gt;"))
    }

    func testEmptyPlotIsValidAndSaysNoData() throws {
        let collector = try XCTUnwrap(
            parseSVG(SVGPlot(title: "nothing", xLabel: "x", yLabel: "y", series: []).render()))
        XCTAssertEqual(collector.elements(withClass: "series-line").count, 0)
        XCTAssertEqual(collector.elements(withClass: "no-data").first?.text, "no data")
        XCTAssertFalse(collector.elements(withClass: "y-tick").isEmpty, "axes are still drawn")
    }

    func testSinglePointGetsAMarkerAndConstantSeriesIsDrawnInsideTheAxes() throws {
        let single = SVGPlot(title: "one", xLabel: "x", yLabel: "y", series: [.init(name: "a", xy: [(3, 0.5)])])
        let singleSVG = try XCTUnwrap(parseSVG(single.render()))
        XCTAssertEqual(singleSVG.elements(withClass: "series-line").count, 1)
        XCTAssertEqual(singleSVG.elements(withClass: "marker").count, 1)

        let constant = SVGPlot(
            title: "flat", xLabel: "x", yLabel: "y",
            series: [.init(name: "flat", xy: [(1, 2), (2, 2), (3, 2)])])
        let constantSVG = try XCTUnwrap(parseSVG(constant.render()))
        let yTicks = constantSVG.elements(withClass: "y-tick").compactMap { Double($0.text) }
        XCTAssertGreaterThan(yTicks.count, 1)
        XCTAssertLessThan(yTicks.min()!, 2)
        XCTAssertGreaterThan(yTicks.max()!, 2)
    }

    func testNonFiniteValuesAreSkippedAndBreakTheLine() throws {
        let plot = SVGPlot(
            title: "gaps", xLabel: "x", yLabel: "y",
            series: [.init(name: "a", xy: [(1, 1), (2, 2), (3, .nan), (4, 3), (5, 4), (6, -.infinity)])])
        let svg = plot.render()
        XCTAssertFalse(svg.lowercased().contains("nan"))
        XCTAssertFalse(svg.lowercased().contains("inf"))
        let collector = try XCTUnwrap(parseSVG(svg))
        let path = try XCTUnwrap(collector.elements(withClass: "series-line").first?.attributes["d"])
        XCTAssertEqual(path.filter { $0 == "M" }.count, 2, "the NaN splits the line into two segments")
        XCTAssertEqual(path.filter { $0 == "L" }.count, 2)
        let yTicks = collector.elements(withClass: "y-tick").compactMap { Double($0.text) }
        XCTAssertEqual(yTicks.min(), 1)
        XCTAssertEqual(yTicks.max(), 4)
    }

    func testControlCharactersAreDroppedSoTheXMLStaysValid() throws {
        XCTAssertEqual(XMLEscaping.escape("a\u{01}b<'c'>"), "ab&lt;&apos;c&apos;&gt;")
        let plot = SVGPlot(
            title: "bad\u{07}name", xLabel: "x", yLabel: "y", series: [.init(name: "r\u{00}un", xy: [(0, 0), (1, 1)])])
        XCTAssertNotNil(parseSVG(plot.render()))
    }

    func testStylesAreUniqueForManySeries() {
        let styles = (0..<32).map { SVGPlot.style(at: $0) }
        XCTAssertEqual(Set(styles.map { "\($0.color)|\($0.dash)" }).count, 32)
    }

    func testWriteProducesAParsableFile() throws {
        let directory = TempDir("svgplot")
        let url = URL(fileURLWithPath: directory.file("plot.svg"))
        try SVGPlot(title: "t", xLabel: "x", yLabel: "y", series: [.init(name: "a", xy: [(0, 1), (1, 2)])]).write(
            to: url)
        let parser = try XCTUnwrap(XMLParser(contentsOf: url))
        XCTAssertTrue(parser.parse())
    }
}

final class NiceTicksTests: XCTestCase {
    func testClassicRanges() {
        let accuracy = TickScale(minimum: 31.2, maximum: 73.9, targetTickCount: 6)
        XCTAssertEqual(accuracy.ticks, [30, 40, 50, 60, 70, 80])
        XCTAssertEqual(accuracy.label(40), "40")

        let loss = TickScale(minimum: 0.43, maximum: 2.28, targetTickCount: 6)
        XCTAssertEqual(loss.stepMantissa, 5)
        XCTAssertEqual(loss.stepExponent, -1)
        XCTAssertEqual(loss.ticks, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
        XCTAssertEqual(loss.ticks.map(loss.label), ["0.0", "0.5", "1.0", "1.5", "2.0", "2.5"])
    }

    func testTickValuesAreExactDecimals() {
        // Accumulating 0.2 three times gives 0.6000000000000001; the ticks must equal the literals.
        let scale = TickScale(minimum: 0.1, maximum: 0.7, targetTickCount: 7)
        XCTAssertEqual(scale.ticks, [0.0, 0.2, 0.4, 0.6, 0.8])
        let fine = TickScale(minimum: 0.31, maximum: 0.39, targetTickCount: 6)
        XCTAssertEqual(fine.ticks, [0.30, 0.32, 0.34, 0.36, 0.38, 0.40])
        XCTAssertEqual(fine.labelDecimals, 2)
    }

    func testTicksCoverTheDataAndUseNiceSteps() {
        for (low, high) in [(0.0, 1.0), (-3.7, 12.2), (1e-4, 9e-4), (950.0, 20_350.0), (-0.02, 0.0), (99.5, 99.9)] {
            let scale = TickScale(minimum: low, maximum: high)
            XCTAssertLessThanOrEqual(scale.lower, low, "\(low)…\(high)")
            XCTAssertGreaterThanOrEqual(scale.upper, high, "\(low)…\(high)")
            XCTAssertTrue([1, 2, 5].contains(scale.stepMantissa), "\(low)…\(high)")
            XCTAssertTrue((3...12).contains(scale.ticks.count), "\(low)…\(high): \(scale.ticks)")
            let labels = scale.ticks.map(scale.label)
            XCTAssertEqual(Set(labels).count, labels.count, "distinct labels for \(low)…\(high): \(labels)")
        }
    }

    func testDegenerateInputs() {
        let constant = TickScale(minimum: 5, maximum: 5)
        XCTAssertLessThan(constant.lower, 5)
        XCTAssertGreaterThan(constant.upper, 5)
        let zero = TickScale(minimum: 0, maximum: 0)
        XCTAssertLessThan(zero.lower, 0)
        XCTAssertGreaterThan(zero.upper, 0)
        let nonFinite = TickScale(minimum: .nan, maximum: .infinity)
        XCTAssertEqual(nonFinite.lower, 0)
        XCTAssertEqual(nonFinite.upper, 1)
        XCTAssertEqual(TickScale(minimum: -0.3, maximum: 0.3).label(-0.0000000001), "0.0")
    }

    func testIntegerStepsForEpochs() {
        let epochs = TickScale(minimum: 1, maximum: 3, targetTickCount: 8, integerSteps: true)
        XCTAssertEqual(epochs.ticks, [1, 2, 3])
        XCTAssertTrue(epochs.ticks.allSatisfy { $0 == $0.rounded() })
        let oneEpoch = TickScale(minimum: 1, maximum: 1, integerSteps: true)
        XCTAssertTrue(oneEpoch.ticks.allSatisfy { $0 == $0.rounded() })
        XCTAssertTrue(oneEpoch.ticks.contains(1))
    }
}
