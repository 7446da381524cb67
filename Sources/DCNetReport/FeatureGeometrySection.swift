import Foundation

/// The report section on penultimate-feature geometry (`dcnet-dist report --features DIR`): a
/// table of the angular spreads per run and a PCA scatter per run. The caller reads the features
/// files (this module reads no safetensors) and appends the section to the report.
public enum FeatureGeometrySection {
    public struct Entry: Sendable {
        public var run: String
        public var images: Int
        /// Nil when no feature was non-zero.
        public var geometry: FeatureGeometry?
        /// The scatter's file name next to the report (nil: no plot).
        public var plotFile: String?
        public init(run: String, images: Int, geometry: FeatureGeometry?, plotFile: String?) {
            self.run = run; self.images = images; self.geometry = geometry; self.plotFile = plotFile
        }
    }

    /// The scatter's file name for a run (safe in a path and a Markdown link).
    public static func plotFileName(run: String) -> String { "features-\(Markdown.slug(run)).svg" }

    public static func markdown(_ entries: [Entry]) -> String {
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
        let plotted = entries.filter { $0.plotFile != nil }
        if !plotted.isEmpty {
            md += "\nTwo principal components of each run's features, per class:\n\n"
            for e in plotted {
                md += "![\(Markdown.altText("features of " + e.run))](\(e.plotFile!))\n\n"
            }
        }
        return md
    }
}
