import DCNetData
import DCNetEvaluation
import DCNetReport
import Foundation

/// `report --features DIR`: every DIR/<run>/features.safetensors (written by `dcnet-dist features`)
/// becomes an entry of the report's feature geometry (its angles, which also feed the
/// feature-separation claims, and its PCA scatter, which the report writes next to report.md).
/// The report module reads no safetensors, so the geometry is computed here and handed over.
/// A file that cannot be read is skipped with a warning: its run then counts as without features.
func featureEntries(from directory: URL) -> [String: FeatureGeometrySection.Entry] {
    let runs = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    var entries: [String: FeatureGeometrySection.Entry] = [:]
    for run in runs {
        let path = directory.appendingPathComponent(run).appendingPathComponent("features.safetensors").path
        guard FileManager.default.fileExists(atPath: path) else { continue }
        let f: PenultimateFeatures, metadata: [String: String]
        do {
            (f, metadata) = try PenultimateFeatures.read(path)
        } catch {
            FileHandle.standardError.write(Data("warning: \(path): skipped, cannot be read: \(error)\n".utf8))
            continue
        }
        let labels = f.labels.map(Int.init)
        let geometry = FeatureGeometry(features: f.values, labels: labels, dimension: f.dimension)
        let names = CIFARVariant(rawValue: metadata["dcnet.dataset"] ?? "")?.defaultClassNames ?? []
        let plot =
            f.count > 0
            ? FeatureProjection(features: f.values, dimension: f.dimension)
                .scatter(labels: labels, classNames: names, title: "Penultimate features: \(run)") : nil
        entries[run] = .init(
            run: run, images: f.count, geometry: geometry,
            plotFile: plot.map { _ in FeatureGeometrySection.plotFileName(run: run) }, plot: plot)
    }
    return entries
}
