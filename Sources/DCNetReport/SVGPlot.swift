import DCNetFormats
import DCNetMetrics
import Foundation

/// A line chart written as a standalone SVG 1.1 document.
///
/// Non-finite points are skipped and break the line (a gap shows missing data rather than
/// interpolating across it). A series with a single finite point is drawn as a marker. Each
/// series is one `<path>`, so the files stay small and easy to post-process. A series may carry a
/// band (e.g. the range over seeds around their mean): one filled, semi-transparent `<path>` in the
/// series' colour, drawn under every line.
public struct SVGPlot: Sendable {
    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public init(x: Double, y: Double) { self.x = x; self.y = y }
    }

    /// The lower and upper edge of a band at `x`.
    public struct BandPoint: Sendable, Equatable {
        public var x: Double
        public var lower: Double
        public var upper: Double
        public init(x: Double, lower: Double, upper: Double) { (self.x, self.lower, self.upper) = (x, lower, upper) }
        var isFinite: Bool { x.isFinite && lower.isFinite && upper.isFinite }
    }

    public struct Series: Sendable, Equatable {
        public var name: String
        public var points: [Point]
        /// The shaded band, in x order; empty: none. Non-finite points are skipped and break the band;
        /// an isolated finite point is drawn as a narrow bar.
        public var band: [BandPoint]
        public init(name: String, points: [Point], band: [BandPoint] = []) {
            self.name = name
            self.points = points
            self.band = band
        }
        public init(name: String, xy: [(Double, Double)]) {
            self.init(name: name, points: xy.map { Point(x: $0.0, y: $0.1) })
        }
        var finitePoints: [Point] { points.filter { $0.x.isFinite && $0.y.isFinite } }
        var finiteBand: [BandPoint] { band.filter(\.isFinite) }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Total size in pixels; the width grows if the legend needs more room.
    public var width: Double = 720
    public var height: Double = 420
    /// Values the axes must include besides the data (e.g. 0 so that differences are not exaggerated).
    public var xInclude: [Double] = []
    public var yInclude: [Double] = []
    /// Epochs and steps: ticks only at whole numbers.
    public var integerX = false
    /// Draw a marker at every point (useful for sparse data such as a few epsilons).
    public var showMarkers = false
    /// Join the points of a series with a line; off for scatter plots (with `showMarkers`), where
    /// the order of the points means nothing. The legend then shows a marker, not a line sample.
    public var showLines = true
    /// What the bands show (e.g. "band: min–max over seeds"), written under the legend when a
    /// series has a band.
    public var bandDescription: String?
    /// Opacity of the band fill.
    public static let bandOpacity = 0.18

    /// Okabe–Ito palette: distinguishable with the common forms of colour blindness.
    public static let colors = [
        "#0072B2", "#D55E00", "#009E73", "#CC79A7",
        "#E69F00", "#56B4E9", "#000000", "#F0E442",
    ]
    /// Dash patterns so series stay distinguishable in grey-scale print; "" is solid.
    public static let dashPatterns = ["", "7 4", "2 3", "9 3 2 3"]

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    /// Colour and dash of the series at `index`; unique (colour, dash) pairs for 32 series.
    public static func style(at index: Int) -> (color: String, dash: String) {
        let color = colors[index % colors.count]
        let dash = dashPatterns[(index + index / colors.count) % dashPatterns.count]
        return (color, dash)
    }

    public func write(to url: URL) throws {
        try AtomicFile.write(render(), to: url.path)
    }

    public func render() -> String {
        let layout = Layout(self)
        var svg = documentHeader(layout)
        svg += grid(layout) + axes(layout) + axisLabels(layout)
        if !layout.hasData {
            svg +=
                "<text class=\"no-data\" x=\"\(fmt(layout.left + layout.plotWidth / 2))\""
                + " y=\"\(fmt(layout.top + layout.plotHeight / 2))\" text-anchor=\"middle\" fill=\"#888888\">"
                + "no data</text>\n"
        }
        // Bands first, under every line, so that no band hides another series' line.
        svg += bands(layout) + lines(layout) + legend(layout)
        svg += "</svg>\n"
        return svg
    }

    /// Where everything goes: the axes' scales and the plot area inside the margins that the tick
    /// labels, the title and the legend need. Text widths are estimated (no font metrics without a
    /// renderer): ~0.6 em per glyph.
    private struct Layout {
        static let fontSize = 12.0
        static let legendSampleWidth = 28.0
        let xScale: TickScale
        let yScale: TickScale
        let hasData: Bool
        /// The band description under the legend, when a series has a band.
        let note: String?
        let left: Double
        let top: Double
        let totalWidth: Double
        let totalHeight: Double
        let plotWidth: Double
        let plotHeight: Double

        init(_ plot: SVGPlot) {
            let allPoints = plot.series.flatMap(\.finitePoints)
            let allBands = plot.series.flatMap(\.finiteBand)
            hasData = !allPoints.isEmpty || !allBands.isEmpty
            let xs = allPoints.map(\.x) + allBands.map(\.x) + plot.xInclude.filter(\.isFinite)
            let ys = allPoints.map(\.y) + allBands.flatMap { [$0.lower, $0.upper] } + plot.yInclude.filter(\.isFinite)
            xScale = TickScale(
                minimum: xs.min() ?? 0, maximum: xs.max() ?? 1,
                targetTickCount: 8, integerSteps: plot.integerX)
            let yScale = TickScale(minimum: ys.min() ?? 0, maximum: ys.max() ?? 1, targetTickCount: 6)
            self.yScale = yScale

            let glyphWidth = Layout.fontSize * 0.6
            let note = plot.series.contains { !$0.finiteBand.isEmpty } ? plot.bandDescription : nil
            self.note = note
            let longestName = (plot.series.map { plot.legendText(for: $0).count } + [note?.count ?? 0]).max() ?? 0
            let legendWidth =
                plot.series.isEmpty ? 0 : Layout.legendSampleWidth + 14 + Double(longestName) * glyphWidth
            let longestYLabel = yScale.ticks.map { yScale.label($0).count }.max() ?? 1
            let left = 30 + Double(longestYLabel) * glyphWidth + 12
            let right = 20 + legendWidth
            let top = plot.title.isEmpty ? 20.0 : 44.0
            let bottom = 58.0
            let totalWidth = max(plot.width, left + right + 320)
            let totalHeight = max(plot.height, top + bottom + 200)
            (self.left, self.top, self.totalWidth, self.totalHeight) = (left, top, totalWidth, totalHeight)
            plotWidth = totalWidth - left - right
            plotHeight = totalHeight - top - bottom
        }

        func px(_ x: Double) -> Double { left + (x - xScale.lower) / (xScale.upper - xScale.lower) * plotWidth }
        func py(_ y: Double) -> Double {
            top + plotHeight - (y - yScale.lower) / (yScale.upper - yScale.lower) * plotHeight
        }
    }

    /// The XML declaration, the root element, the plot area's clip path, the background and the title.
    private func documentHeader(_ l: Layout) -> String {
        var svg = """
            <?xml version="1.0" encoding="UTF-8" standalone="no"?>
            <svg xmlns="http://www.w3.org/2000/svg" version="1.1" \
            width="\(fmt(l.totalWidth))" height="\(fmt(l.totalHeight))" \
            viewBox="0 0 \(fmt(l.totalWidth)) \(fmt(l.totalHeight))" \
            font-family="Helvetica, Arial, sans-serif" font-size="\(fmt(Layout.fontSize))">
            <title>\(XMLEscaping.escape(title))</title>
            <defs><clipPath id="plot-area"><rect x="\(fmt(l.left))" y="\(fmt(l.top))" \
            width="\(fmt(l.plotWidth))" height="\(fmt(l.plotHeight))"/></clipPath></defs>
            <rect x="0" y="0" width="\(fmt(l.totalWidth))" height="\(fmt(l.totalHeight))" fill="#ffffff"/>

            """
        if !title.isEmpty {
            svg +=
                "<text class=\"title\" x=\"\(fmt(l.left + l.plotWidth / 2))\" y=\"26\" text-anchor=\"middle\""
                + " font-size=\"15\" font-weight=\"bold\">\(XMLEscaping.escape(title))</text>\n"
        }
        return svg
    }

    /// Grid lines at every tick.
    private func grid(_ l: Layout) -> String {
        var svg = "<g class=\"grid\" stroke=\"#e3e3e3\" stroke-width=\"1\">\n"
        for tick in l.xScale.ticks {
            svg += line(l.px(tick), l.top, l.px(tick), l.top + l.plotHeight)
        }
        for tick in l.yScale.ticks {
            svg += line(l.left, l.py(tick), l.left + l.plotWidth, l.py(tick))
        }
        return svg + "</g>\n"
    }

    /// The frame of the plot area, its tick marks and their labels.
    private func axes(_ l: Layout) -> String {
        let (top, left, plotWidth, plotHeight) = (l.top, l.left, l.plotWidth, l.plotHeight)
        var svg = "<g class=\"axes\" stroke=\"#333333\" stroke-width=\"1\" fill=\"none\">\n"
        svg +=
            "<rect x=\"\(fmt(left))\" y=\"\(fmt(top))\" width=\"\(fmt(plotWidth))\" height=\"\(fmt(plotHeight))\"/>\n"
        for tick in l.xScale.ticks {
            svg += line(l.px(tick), top + plotHeight, l.px(tick), top + plotHeight + 5)
        }
        for tick in l.yScale.ticks {
            svg += line(left - 5, l.py(tick), left, l.py(tick))
        }
        svg += "</g>\n"
        svg += "<g class=\"tick-labels\" fill=\"#333333\">\n"
        for tick in l.xScale.ticks {
            svg +=
                "<text class=\"x-tick\" x=\"\(fmt(l.px(tick)))\" y=\"\(fmt(top + plotHeight + 19))\""
                + " text-anchor=\"middle\">\(l.xScale.label(tick))</text>\n"
        }
        for tick in l.yScale.ticks {
            svg +=
                "<text class=\"y-tick\" x=\"\(fmt(left - 8))\" y=\"\(fmt(l.py(tick) + 4))\""
                + " text-anchor=\"end\">\(l.yScale.label(tick))</text>\n"
        }
        return svg + "</g>\n"
    }

    private func axisLabels(_ l: Layout) -> String {
        let yLabelX = 18.0, yLabelY = l.top + l.plotHeight / 2
        return "<text class=\"x-label\" x=\"\(fmt(l.left + l.plotWidth / 2))\" y=\"\(fmt(l.totalHeight - 14))\""
            + " text-anchor=\"middle\">\(XMLEscaping.escape(xLabel))</text>\n"
            + "<text class=\"y-label\" x=\"\(fmt(yLabelX))\" y=\"\(fmt(yLabelY))\" text-anchor=\"middle\""
            + " transform=\"rotate(-90 \(fmt(yLabelX)) \(fmt(yLabelY)))\">\(XMLEscaping.escape(yLabel))</text>\n"
    }

    /// One filled path per series with a band; empty when no series has one.
    private func bands(_ l: Layout) -> String {
        let banded = series.indices.filter { !series[$0].finiteBand.isEmpty }
        guard !banded.isEmpty else { return "" }
        var svg = "<g class=\"bands\" clip-path=\"url(#plot-area)\" stroke=\"none\">\n"
        for index in banded {
            let pathData = bandPath(series[index].band, px: l.px, py: l.py)
            svg +=
                "<path class=\"series-band\" data-series=\"\(XMLEscaping.escape(series[index].name))\""
                + " fill=\"\(SVGPlot.style(at: index).color)\" fill-opacity=\"\(fmt(SVGPlot.bandOpacity))\""
                + " d=\"\(pathData)\"/>\n"
        }
        return svg + "</g>\n"
    }

    /// Each series with data: its line (unless `showLines` is off) and its markers.
    private func lines(_ l: Layout) -> String {
        var svg =
            "<g class=\"series\" clip-path=\"url(#plot-area)\" fill=\"none\" stroke-width=\"2\""
            + " stroke-linejoin=\"round\" stroke-linecap=\"round\">\n"
        for (index, entry) in series.enumerated() {
            let finiteCount = entry.finitePoints.count
            guard finiteCount > 0 else { continue }
            let (color, dash) = SVGPlot.style(at: index)
            // Build the path from the original points so that a NaN starts a new segment.
            var pathData: [String] = []
            var penDown = false
            for point in entry.points {
                guard point.x.isFinite && point.y.isFinite else { penDown = false; continue }
                pathData.append("\(penDown ? "L" : "M")\(fmt(l.px(point.x))) \(fmt(l.py(point.y)))")
                penDown = true
            }
            let dashAttribute = dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\""
            if showLines {
                svg +=
                    "<path class=\"series-line\" data-series=\"\(XMLEscaping.escape(entry.name))\""
                    + " stroke=\"\(color)\"\(dashAttribute) d=\"\(pathData.joined(separator: " "))\"/>\n"
            }
            for point in markerPoints(entry.points, all: showMarkers || !showLines || finiteCount == 1) {
                svg +=
                    "<circle class=\"marker\" cx=\"\(fmt(l.px(point.x)))\" cy=\"\(fmt(l.py(point.y)))\" r=\"3\""
                    + " fill=\"\(color)\" stroke=\"none\"/>\n"
            }
        }
        return svg + "</g>\n"
    }

    /// The legend, right of the plot area so that it never hides data; empty without series.
    private func legend(_ l: Layout) -> String {
        guard !series.isEmpty else { return "" }
        let legendX = l.left + l.plotWidth + 16
        let sampleWidth = Layout.legendSampleWidth
        var svg = "<g class=\"legend\">\n"
        for (index, entry) in series.enumerated() {
            let (color, dash) = SVGPlot.style(at: index)
            let y = l.top + 8 + Double(index) * 20
            let dashAttribute = dash.isEmpty ? "" : " stroke-dasharray=\"\(dash)\""
            if !entry.finiteBand.isEmpty {
                svg +=
                    "<rect class=\"legend-band\" x=\"\(fmt(legendX))\" y=\"\(fmt(y - 6))\""
                    + " width=\"\(fmt(sampleWidth))\" height=\"12\" fill=\"\(color)\""
                    + " fill-opacity=\"\(fmt(SVGPlot.bandOpacity))\" stroke=\"none\"/>\n"
            }
            if showLines {
                svg +=
                    "<line x1=\"\(fmt(legendX))\" y1=\"\(fmt(y))\" x2=\"\(fmt(legendX + sampleWidth))\""
                    + " y2=\"\(fmt(y))\" stroke=\"\(color)\" stroke-width=\"2\"\(dashAttribute)/>\n"
            } else {
                svg +=
                    "<circle class=\"legend-marker\" cx=\"\(fmt(legendX + sampleWidth / 2))\""
                    + " cy=\"\(fmt(y))\" r=\"4\" fill=\"\(color)\" stroke=\"none\"/>\n"
            }
            svg +=
                "<text class=\"legend-label\" x=\"\(fmt(legendX + sampleWidth + 8))\""
                + " y=\"\(fmt(y + 4))\">\(XMLEscaping.escape(legendText(for: entry)))</text>\n"
        }
        if let note = l.note {
            svg +=
                "<text class=\"legend-note\" x=\"\(fmt(legendX))\" y=\"\(fmt(l.top + 12 + Double(series.count) * 20))\""
                + " fill=\"#555555\">\(XMLEscaping.escape(note))</text>\n"
        }
        return svg + "</g>\n"
    }

    private func legendText(for entry: Series) -> String {
        entry.finitePoints.isEmpty ? "\(entry.name) (no data)" : entry.name
    }

    /// All finite points, or only the isolated ones: a finite point whose neighbours are both
    /// missing is a zero-length path segment and would otherwise be invisible.
    private func markerPoints(_ points: [Point], all: Bool) -> [Point] {
        func finite(_ index: Int) -> Bool {
            points.indices.contains(index) && points[index].x.isFinite && points[index].y.isFinite
        }
        return points.indices.filter { finite($0) && (all || (!finite($0 - 1) && !finite($0 + 1))) }
            .map { points[$0] }
    }

    /// The band's outline: along the upper edge and back along the lower one, one closed subpath
    /// per run of finite points; an isolated point becomes a bar 6 pixels wide.
    private func bandPath(_ band: [BandPoint], px: (Double) -> Double, py: (Double) -> Double) -> String {
        var segments: [[BandPoint]] = [[]]
        for point in band {
            if point.isFinite { segments[segments.count - 1].append(point) } else { segments.append([]) }
        }
        var parts: [String] = []
        for segment in segments where !segment.isEmpty {
            var outline: [(Double, Double)]
            if segment.count == 1 {
                let (x, point) = (px(segment[0].x), segment[0])
                outline = [(x - 3, py(point.upper)), (x + 3, py(point.upper)), (x + 3, py(point.lower))]
                outline.append((x - 3, py(point.lower)))
            } else {
                outline = segment.map { (px($0.x), py($0.upper)) } + segment.reversed().map { (px($0.x), py($0.lower)) }
            }
            parts.append(
                outline.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(fmt($0.element.0)) \(fmt($0.element.1))" }
                    .joined(separator: " ") + " Z")
        }
        return parts.joined(separator: " ")
    }

    private func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double) -> String {
        "<line x1=\"\(fmt(x1))\" y1=\"\(fmt(y1))\" x2=\"\(fmt(x2))\" y2=\"\(fmt(y2))\"/>\n"
    }

    private func fmt(_ value: Double) -> String {
        let text = String(format: "%.2f", value)
        // Trim "12.00" → "12" and "12.50" → "12.5" to keep files small.
        guard text.contains(".") else { return text }
        var trimmed = Substring(text)
        while trimmed.hasSuffix("0") { trimmed = trimmed.dropLast() }
        if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        return trimmed == "-0" ? "0" : String(trimmed)
    }
}
