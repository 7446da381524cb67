import DCNetFormats
import DCNetRandom
import TestSupport
import XCTest

@testable import DCNetData

/// Deterministic synthetic images (pixels vary with index, channel and position).
func syntheticImages(count: Int, variant: CIFARVariant, seed: UInt64 = 1) -> LabeledImages {
    var rng = SplitMix64(seed: seed)
    var px = [UInt8](repeating: 0, count: count * 3072)
    for i in 0..<px.count { px[i] = UInt8(truncatingIfNeeded: rng.next() >> 56) }
    let labels = (0..<count).map { UInt8($0 % variant.classCount) }
    let coarse: [UInt8]? = variant == .cifar100 ? (0..<count).map { UInt8(($0 * 7) % 20) } : nil
    return LabeledImages(
        pixels: px, labels: labels, coarseLabels: coarse, classCount: variant.classCount,
        classNames: variant.defaultClassNames, coarseClassNames: variant.defaultCoarseClassNames)
}

/// Writes `images` split over the variant's files for `split` (records distributed in order).
/// Returns the per-file record slices written.
@discardableResult
func writeSplit(
    _ images: LabeledImages, variant: CIFARVariant, split: Split, into dir: TempDir,
    subdir: String? = nil, gzip: Bool
) -> [[UInt8]] {
    let names = variant.fileNames(split: split)
    let per = images.count / names.count
    var out: [[UInt8]] = []
    if let subdir { dir.mkdir(subdir) }
    for (k, name) in names.enumerated() {
        let lo = k * per, hi = k == names.count - 1 ? images.count : lo + per
        let recs = images.subset(indices: lo..<hi).encodedRecords(variant: variant)
        let rel = (subdir.map { $0 + "/" } ?? "") + name
        if gzip { dir.write(rel + ".gz", Gzip.compress(recs)) } else { dir.write(rel, recs) }
        out.append(recs)
    }
    return out
}

/// Asserts `body` throws a DataError of `kind` whose text contains every one of `needles`.
func assertDataError(
    _ kind: DataError.Kind, mentioning needles: String..., file: StaticString = #filePath,
    line: UInt = #line, _ body: () throws -> Void
) {
    do {
        try body()
        XCTFail("expected \(kind) error mentioning \(needles), got success", file: file, line: line)
    } catch let e as DataError {
        XCTAssertEqual(e.kind, kind, "\(e)", file: file, line: line)
        for needle in needles {
            XCTAssertTrue("\(e)".contains(needle), "message does not say \(needle): \(e)", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error type: \(error)", file: file, line: line)
    }
}
