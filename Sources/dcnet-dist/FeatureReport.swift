import DCNetData
import DCNetEvaluation
import DCNetReport
import Foundation

/// `report --features DIR`: every DIR/<run>/features.safetensors (written by `dcnet-dist features`)
/// becomes a row of the feature-geometry table and a scatter plot in `output`; the section is
/// appended to the report file. Returns the plots written.
func appendFeatureGeometry(from directory: URL, to reportFile: URL, plots output: URL) throws -> [URL] {
    let runs = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    var entries: [FeatureGeometrySection.Entry] = [], plots: [URL] = []
    for run in runs {
        let path = directory.appendingPathComponent(run).appendingPathComponent("features.safetensors").path
        guard FileManager.default.fileExists(atPath: path) else { continue }
        let (f, metadata) = try PenultimateFeatures.read(path)
        let labels = f.labels.map(Int.init)
        let geometry = FeatureGeometry(features: f.values, labels: labels, dimension: f.dimension)
        let names = CIFARVariant(rawValue: metadata["dcnet.dataset"] ?? "")?.defaultClassNames ?? []
        var plotFile: String?
        if f.count > 0 {
            let name = FeatureGeometrySection.plotFileName(run: run)
            let url = output.appendingPathComponent(name)
            try FeatureProjection(features: f.values, dimension: f.dimension)
                .scatter(labels: labels, classNames: names, title: "Penultimate features: \(run)")
                .write(to: url)
            plots.append(url); plotFile = name
        }
        entries.append(.init(run: run, images: f.count, geometry: geometry, plotFile: plotFile))
    }
    var report = try String(contentsOf: reportFile, encoding: .utf8)
    if !report.hasSuffix("\n\n") { report += report.hasSuffix("\n") ? "\n" : "\n\n" }
    report += FeatureGeometrySection.markdown(entries)
    try Data(report.utf8).write(to: reportFile, options: .atomic)
    return plots
}
