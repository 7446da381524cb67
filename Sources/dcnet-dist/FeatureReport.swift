import DCNetData
import DCNetEvaluation
import DCNetFormats
import DCNetReport
import Foundation

/// `report --features DIR`: every DIR/<run>/features.safetensors (written by `dcnet-dist features`)
/// becomes an entry of the report's feature geometry (its angles, which also feed the
/// feature-separation claims, and its PCA scatter, which the report writes next to report.md).
/// The report module reads no safetensors, so the geometry is computed here and handed over.
/// Where the features file is gone but its `features.geometry.json` record is there (a suite
/// restored from committed records), the record gives the angles, and a scatter already in
/// `outputDirectory` (drawn when the features were there) stays linked.
/// A file that cannot be read is skipped with a warning: its run then counts as without features.
func featureEntries(from directory: URL, outputDirectory: URL) -> [String: FeatureGeometrySection.Entry] {
    let runs = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    var entries: [String: FeatureGeometrySection.Entry] = [:]
    for run in runs {
        let path = directory.appendingPathComponent(run).appendingPathComponent("features.safetensors").path
        guard FileManager.default.fileExists(atPath: path) else {
            if let entry = recordedEntry(run: run, features: path, outputDirectory: outputDirectory) {
                entries[run] = entry
            }
            continue
        }
        let f: PenultimateFeatures, metadata: [String: String]
        do {
            (f, metadata) = try PenultimateFeatures.read(path)
        } catch {
            FileSink.standardError.writeIgnoringErrors("warning: \(path): skipped, cannot be read: \(error)\n")
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

/// The entry of a run whose features file is gone, from its `features.geometry.json` (nil: none).
private func recordedEntry(run: String, features: String, outputDirectory: URL) -> FeatureGeometrySection.Entry? {
    let path = FeatureGeometryRecord.path(forFeatures: features)
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    let record: FeatureGeometryRecord
    do {
        record = try FeatureGeometryRecord.read(path)
    } catch {
        FileSink.standardError.writeIgnoringErrors("warning: skipped: \(error)\n")
        return nil
    }
    let plotFile = FeatureGeometrySection.plotFileName(run: run)
    let plotted = FileManager.default.fileExists(atPath: outputDirectory.appendingPathComponent(plotFile).path)
    return .init(run: run, images: record.images, geometry: record.geometry, plotFile: plotted ? plotFile : nil)
}

extension PenultimateFeatures {
    /// The angles of these features, as `dcnet-dist features` records them next to its output.
    func geometryRecord(source: String) -> FeatureGeometryRecord {
        FeatureGeometryRecord(
            images: count,
            geometry: FeatureGeometry(features: values, labels: labels.map(Int.init), dimension: dimension),
            source: source)
    }
}
