import DCNetFormats
import Foundation

/// `features.geometry.json`, written by `dcnet-dist features` next to its features file: the angles
/// the report needs, in a few hundred bytes. A suite keeps it in its committed records
/// (`scripts/experiments --report-dir`), where the features file (megabytes per run) is not kept, so a
/// report written on another machine still has every run's feature geometry.
public struct FeatureGeometryRecord: Codable, Sendable, Equatable {
    /// Test images whose features were written.
    public var images: Int
    /// Nil when no feature was non-zero.
    public var geometry: FeatureGeometry?
    /// Where the angles came from (the features file, or how they were recovered).
    public var source: String

    public init(images: Int, geometry: FeatureGeometry?, source: String) {
        self.images = images; self.geometry = geometry; self.source = source
    }

    /// The record's path for a features file: `…/features.safetensors` -> `…/features.geometry.json`.
    public static func path(forFeatures path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let stem = url.pathExtension == "safetensors" ? url.deletingPathExtension() : url
        return stem.path + ".geometry.json"
    }

    /// Why a record cannot be used; the text names the file.
    public struct ReadFailure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func read(_ path: String) throws -> FeatureGeometryRecord {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ReadFailure(description: "\(path): cannot be read (\(error.localizedDescription))")
        }
        do {
            return try JSONDecoder().decode(FeatureGeometryRecord.self, from: data)
        } catch {
            throw ReadFailure(description: "\(path): not a feature geometry record (\(error))")
        }
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write([UInt8](encoder.encode(self)), to: path)
    }
}

extension FeatureGeometry: Codable {
    private enum CodingKeys: String, CodingKey {
        case intraClassAngle = "intra_class_angle_deg", interClassAngle = "inter_class_angle_deg"
        case classes, count, ratio
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        intraClassAngle = try c.decode(Double.self, forKey: .intraClassAngle)
        // NaN (a single class) is written as null.
        interClassAngle = try c.decodeIfPresent(Double.self, forKey: .interClassAngle) ?? .nan
        classes = try c.decode([Int].self, forKey: .classes)
        count = try c.decode(Int.self, forKey: .count)
    }

    /// The ratio is written too, for a reader of the file; it is recomputed when read.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(intraClassAngle, forKey: .intraClassAngle)
        try c.encodeIfPresent(interClassAngle.isFinite ? interClassAngle : nil, forKey: .interClassAngle)
        try c.encode(classes, forKey: .classes)
        try c.encode(count, forKey: .count)
        try c.encodeIfPresent(ratio.isFinite ? ratio : nil, forKey: .ratio)
    }
}
