import Foundation

/// The report section on penultimate-feature geometry (`dcnet-dist report --features DIR`): a
/// table of the angular spreads per run, the scatters of the runs a feature-separation group
/// compares side by side, and a PCA scatter per other run. The caller reads the features files
/// (this module reads no safetensors) and hands the entries to ``ExperimentReport/features``.
public enum FeatureGeometrySection {
    public struct Entry: Sendable {
        public var run: String
        public var images: Int
        /// Nil when no feature was non-zero.
        public var geometry: FeatureGeometry?
        /// The scatter's file name next to the report (nil: no plot).
        public var plotFile: String?
        /// The scatter itself, written by ``ExperimentReport/write()`` as `plotFile` (nil: the caller
        /// writes it, or there is none).
        public var plot: SVGPlot?
        public init(run: String, images: Int, geometry: FeatureGeometry?, plotFile: String?, plot: SVGPlot? = nil) {
            self.run = run; self.images = images; self.geometry = geometry; self.plotFile = plotFile
            self.plot = plot
        }
    }

    /// Scatters shown next to each other in one table row: the runs a group compares.
    public struct SideBySide: Sendable, Equatable {
        public struct Panel: Sendable, Equatable {
            /// The run directory whose scatter is shown.
            public var run: String
            /// The column heading.
            public var label: String
            public init(run: String, label: String) { (self.run, self.label) = (run, label) }
        }
        public var title: String
        /// Baseline first.
        public var panels: [Panel]
        public init(title: String, panels: [Panel]) { (self.title, self.panels) = (title, panels) }
    }

    /// The scatter's file name for a run (safe in a path and a Markdown link).
    public static func plotFileName(run: String) -> String { "features-\(Markdown.slug(run)).svg" }

    /// `sideBySide`: comparisons whose scatters go in one table row (panels without a plot are
    /// dropped); the other runs' scatters follow as a list.
    public static func markdown(_ entries: [Entry], sideBySide: [SideBySide] = []) -> String {
        var md = "## Feature geometry\n\n"
        md +=
            "Penultimate features of the test set (`dcnet-dist features`: the globally pooled features the "
            + "classifier sees). Intra-class: mean angle between a feature and its class centre; inter-class: "
            + "mean angle between two class centres; a smaller ratio means classes that are tighter and further "
            + "apart in angle.\n\n"
        guard !entries.isEmpty else { return md + "No `<run>/features.safetensors` files were found.\n" }
        md += "| run | images | intra-class angle | inter-class angle | ratio |\n|---|---:|---:|---:|---:|\n"
        for e in entries {
            let g = e.geometry
            md +=
                "| \(Markdown.cell(e.run)) | \(e.images) | "
                + (g.map { Markdown.number($0.intraClassAngle, decimals: 2) + "°" } ?? "—") + " | "
                + (g.map { Markdown.number($0.interClassAngle, decimals: 2) + "°" } ?? "—") + " | "
                + (g.map { Markdown.number($0.ratio, decimals: 3) } ?? "—") + " |\n"
        }
        let plotFiles = Dictionary(entries.compactMap { e in e.plotFile.map { (e.run, $0) } }) { a, _ in a }
        var shown: Set<String> = []
        for comparison in sideBySide {
            let panels = comparison.panels.filter { plotFiles[$0.run] != nil }
            guard !panels.isEmpty else { continue }
            md += "\n### \(Markdown.text(comparison.title))\n\n"
            md += "Two principal components of the features, per class, side by side:\n\n"
            md += "| " + panels.map { Markdown.cell($0.label) }.joined(separator: " | ") + " |\n"
            md += "|" + panels.map { _ in ":---:" }.joined(separator: "|") + "|\n"
            md +=
                "| "
                + panels.map { "![\(Markdown.cell(Markdown.altText("features of " + $0.run)))](\(plotFiles[$0.run]!))" }
                .joined(separator: " | ") + " |\n"
            shown.formUnion(panels.map(\.run))
        }
        let plotted = entries.filter { $0.plotFile != nil && !shown.contains($0.run) }
        if !plotted.isEmpty {
            md +=
                shown.isEmpty
                ? "\nTwo principal components of each run's features, per class:\n\n"
                : "\nThe other runs' features:\n\n"
            for e in plotted {
                md += "![\(Markdown.altText("features of " + e.run))](\(e.plotFile!))\n\n"
            }
        }
        return md
    }
}
