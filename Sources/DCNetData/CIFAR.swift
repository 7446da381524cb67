import DCNetFormats
import Dispatch

/// Which CIFAR dataset (official binary format).
public enum CIFARVariant: String, Sendable, CaseIterable {
    case cifar10, cifar100

    /// Number of (fine) classes: 10 or 100.
    public var classCount: Int { self == .cifar10 ? 10 : 100 }
    /// Number of coarse classes (CIFAR-100 only).
    public var coarseClassCount: Int? { self == .cifar10 ? nil : 20 }
    /// Label bytes before the 3072 pixel bytes of each record: 1 (CIFAR-10) or 2 (coarse, fine).
    public var labelBytes: Int { self == .cifar10 ? 1 : 2 }
    /// Bytes per record: 3073 or 3074.
    public var recordSize: Int { labelBytes + LabeledImages.imageBytes }
    /// Subdirectory the official archive extracts to.
    public var archiveSubdirectory: String { self == .cifar10 ? "cifar-10-batches-bin" : "cifar-100-binary" }
    /// Class-name file (one name per line) read when present.
    public var classNamesFile: String { self == .cifar10 ? "batches.meta.txt" : "fine_label_names.txt" }
    public var coarseClassNamesFile: String? { self == .cifar10 ? nil : "coarse_label_names.txt" }

    /// Uncompressed file names of a split, in load order.
    public func fileNames(split: Split) -> [String] {
        switch (self, split) {
        case (.cifar10, .train): return (1...5).map { "data_batch_\($0).bin" }
        case (.cifar10, .test): return ["test_batch.bin"]
        case (.cifar100, .train): return ["train.bin"]
        case (.cifar100, .test): return ["test.bin"]
        }
    }

    public var defaultClassNames: [String] { self == .cifar10 ? CIFARNames.cifar10 : CIFARNames.cifar100Fine }
    public var defaultCoarseClassNames: [String]? { self == .cifar10 ? nil : CIFARNames.cifar100Coarse }
}

public enum Split: String, Sendable, CaseIterable { case train, test }

/// Decoded 32×32 RGB images with labels. `pixels` holds `count × 3072` bytes, each image in
/// CHW order (R plane, G plane, B plane; each plane row-major) exactly as in the CIFAR files.
public struct LabeledImages: Sendable {
    public static let channels = 3, height = 32, width = 32
    public static let imageBytes = 3 * 32 * 32

    public var pixels: [UInt8]
    /// Class label of each image (the fine label for CIFAR-100).
    public var labels: [UInt8]
    /// CIFAR-100 coarse (superclass) labels; nil for CIFAR-10.
    public var coarseLabels: [UInt8]?
    public var classCount: Int
    public var classNames: [String]
    public var coarseClassNames: [String]?

    public var count: Int { labels.count }

    public init(
        pixels: [UInt8], labels: [UInt8], coarseLabels: [UInt8]? = nil,
        classCount: Int, classNames: [String], coarseClassNames: [String]? = nil
    ) {
        precondition(pixels.count == labels.count * Self.imageBytes, "pixels must hold count×3072 bytes")
        precondition(coarseLabels == nil || coarseLabels!.count == labels.count)
        self.pixels = pixels; self.labels = labels; self.coarseLabels = coarseLabels
        self.classCount = classCount; self.classNames = classNames; self.coarseClassNames = coarseClassNames
    }

    /// The first `n` images (all of them if `n >= count`).
    public func prefix(_ n: Int) -> LabeledImages {
        let k = max(0, min(n, count))
        return LabeledImages(
            pixels: Array(pixels[0..<k * Self.imageBytes]), labels: Array(labels[0..<k]),
            coarseLabels: coarseLabels.map { Array($0[0..<k]) }, classCount: classCount,
            classNames: classNames, coarseClassNames: coarseClassNames)
    }

    /// The images at `indices`, in that order (duplicates allowed).
    public func subset(indices: some Collection<Int>) -> LabeledImages {
        let n = indices.count, ib = Self.imageBytes
        var px = [UInt8](repeating: 0, count: n * ib)
        var lb = [UInt8](); lb.reserveCapacity(n)
        var cl: [UInt8]? = coarseLabels == nil ? nil : []
        px.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                for (j, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "subset index \(i) out of range 0..<\(count)")
                    (dst.baseAddress! + j * ib).update(from: src.baseAddress! + i * ib, count: ib)
                    lb.append(labels[i])
                    cl?.append(coarseLabels![i])
                }
            }
        }
        return LabeledImages(
            pixels: px, labels: lb, coarseLabels: cl, classCount: classCount,
            classNames: classNames, coarseClassNames: coarseClassNames)
    }

    /// Number of images per class.
    public func classCounts() -> [Int] {
        var c = [Int](repeating: 0, count: classCount)
        for l in labels where Int(l) < classCount { c[Int(l)] += 1 }
        return c
    }

    /// Pixel value of image `index`, channel `c`, row `y`, column `x`.
    @inlinable public func pixel(_ index: Int, _ c: Int, _ y: Int, _ x: Int) -> UInt8 {
        pixels[index * Self.imageBytes + c * 1024 + y * 32 + x]
    }

    /// The records of these images in the official binary format of `variant`
    /// (for writing sample files and tests). CIFAR-100 uses `coarseLabels` (0 if nil).
    public func encodedRecords(variant: CIFARVariant) -> [UInt8] {
        let recSize = variant.recordSize, imgBytes = Self.imageBytes
        var out = [UInt8](repeating: 0, count: count * recSize)
        for i in 0..<count {
            let o = i * recSize
            if variant == .cifar100 {
                out[o] = coarseLabels?[i] ?? 0
                out[o + 1] = labels[i]
            } else {
                out[o] = labels[i]
            }
            out.replaceSubrange(o + variant.labelBytes..<o + recSize, with: pixels[i * imgBytes..<(i + 1) * imgBytes])
        }
        return out
    }
}

/// Per-task result slots for `concurrentPerform` (each index is written by exactly one task).
private struct ResultSlots: @unchecked Sendable {
    let buf: UnsafeMutableBufferPointer<Result<[UInt8], Error>?>
    init(count: Int) { buf = .allocate(capacity: count); buf.initialize(repeating: nil) }
    func set(_ i: Int, _ r: Result<[UInt8], Error>) { buf[i] = r }
    func get(_ i: Int) -> Result<[UInt8], Error>? { buf[i] }
    func free() { _ = buf.deinitialize(); buf.deallocate() }
}

/// Readers for the official CIFAR-10 / CIFAR-100 binary files, plain or gzip-compressed.
public enum CIFAR {
    /// The largest file a CIFAR reader accepts after decompression: all 60,000 images of the data
    /// set in one file, with CIFAR-100's two label bytes.
    public static let maxFileBytes = 60_000 * CIFARVariant.cifar100.recordSize

    /// Loads a split. `directory` holds the `.bin` / `.bin.gz` files, either directly or in
    /// the archive's subdirectory (`cifar-10-batches-bin/`, `cifar-100-binary/`). For each file
    /// the plain `.bin` is used when it exists, else `.bin.gz`. Several files are decoded in
    /// parallel. Class names come from `batches.meta.txt` / `fine_label_names.txt` (and
    /// `coarse_label_names.txt`) when present, else the built-in defaults.
    public static func load(directory: String, variant: CIFARVariant, split: Split) throws -> LabeledImages {
        let dir = try resolveDirectory(directory, variant: variant, split: split)
        let names = variant.fileNames(split: split)
        var paths: [String] = []
        for name in names {
            let plain = dir + "/" + name, gz = plain + ".gz"
            if FileIO.isRegularFile(plain) {
                paths.append(plain)
            } else if FileIO.isRegularFile(gz) {
                paths.append(gz)
            } else {
                throw DataError(
                    .missingFile, path: plain,
                    "missing \(variant.rawValue) \(split.rawValue) file: looked for \(plain) and \(gz)")
            }
        }
        // Decode files concurrently (each task writes only its own slot).
        let slots = ResultSlots(count: paths.count)
        defer { slots.free() }
        let fixedPaths = paths
        DispatchQueue.concurrentPerform(iterations: fixedPaths.count) { i in
            slots.set(i, Result { try readRecords(path: fixedPaths[i], variant: variant) })
        }
        var files: [[UInt8]] = []
        for i in 0..<paths.count { files.append(try slots.get(i)!.get()) }

        let rs = variant.recordSize, ib = LabeledImages.imageBytes, lbytes = variant.labelBytes
        let total = files.reduce(0) { $0 + $1.count / rs }
        var labels = [UInt8](repeating: 0, count: total)
        var coarse: [UInt8]? = variant == .cifar100 ? [UInt8](repeating: 0, count: total) : nil
        var pixels = [UInt8](repeating: 0, count: total * ib)
        var base = 0
        for (f, bytes) in files.enumerated() {
            let n = bytes.count / rs
            let maxLabel = UInt8(variant.classCount - 1)
            try bytes.withUnsafeBufferPointer { src in
                try pixels.withUnsafeMutableBufferPointer { dst in
                    let s = src.baseAddress!, d = dst.baseAddress!
                    for i in 0..<n {
                        let rec = s + i * rs
                        let fine = rec[lbytes - 1]
                        if fine > maxLabel {
                            throw DataError(
                                .labelOutOfRange, path: paths[f],
                                "record \(i): label \(fine) out of range 0...\(maxLabel) (record size \(rs), byte "
                                    + "offset \(i * rs + lbytes - 1))"
                            )
                        }
                        if lbytes == 2 {
                            let c = rec[0]
                            if c > 19 {
                                throw DataError(
                                    .labelOutOfRange, path: paths[f],
                                    "record \(i): coarse label \(c) out of range 0...19 (byte offset \(i * rs))")
                            }
                            coarse![base + i] = c
                        }
                        labels[base + i] = fine
                        (d + (base + i) * ib).update(from: rec + lbytes, count: ib)
                    }
                }
            }
            base += n
        }
        let classNames =
            try readClassNames(dir: dir, file: variant.classNamesFile, count: variant.classCount)
            ?? variant.defaultClassNames
        var coarseNames: [String]? = nil
        if let cf = variant.coarseClassNamesFile {
            coarseNames = try readClassNames(dir: dir, file: cf, count: 20) ?? variant.defaultCoarseClassNames
        }
        return LabeledImages(
            pixels: pixels, labels: labels, coarseLabels: coarse, classCount: variant.classCount,
            classNames: classNames, coarseClassNames: coarseNames)
    }

    /// The directory that actually holds the files: `directory` itself or its archive subdirectory.
    public static func resolveDirectory(_ directory: String, variant: CIFARVariant, split: Split = .train) throws
        -> String
    {
        guard FileIO.isDirectory(directory) else {
            throw DataError(
                .missingDirectory, path: directory,
                FileIO.exists(directory) ? "not a directory" : "data directory does not exist")
        }
        let first = variant.fileNames(split: split)[0]
        let trimmed = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        let sub = trimmed + "/" + variant.archiveSubdirectory
        func has(_ d: String) -> Bool {
            FileIO.isRegularFile(d + "/" + first) || FileIO.isRegularFile(d + "/" + first + ".gz")
        }
        if has(trimmed) { return trimmed }
        if FileIO.isDirectory(sub) && has(sub) { return sub }
        throw DataError(
            .missingFile, path: trimmed + "/" + first,
            "no \(variant.rawValue) \(split.rawValue) data: looked for \(first) and \(first).gz in \(trimmed) and in "
                + "\(sub)"
        )
    }

    /// Reads one file (plain or gzip, by content) and checks it is a non-empty whole number
    /// of records. Returns the raw record bytes.
    public static func readRecords(path: String, variant: CIFARVariant) throws -> [UInt8] {
        let raw = try FileIO.readAll(path)
        if raw.isEmpty { throw DataError(.emptyFile, path: path, "empty file (0 bytes)") }
        let isGz = Gzip.isGzip(raw)
        if path.hasSuffix(".gz") && !isGz {
            throw DataError(
                .corruptGzip, path: path, "corrupt gzip stream: bad magic bytes \(hex(raw.prefix(2))), expected 1f 8b")
        }
        let bytes = isGz ? try Gzip.decompress(raw, path: path, limit: Self.maxFileBytes) : raw
        let rs = variant.recordSize
        if bytes.isEmpty { throw DataError(.emptyFile, path: path, "empty file (decompresses to 0 bytes)") }
        if bytes.count % rs != 0 {
            throw DataError(
                .partialRecord, path: path,
                "size \(bytes.count) bytes\(isGz ? " (decompressed)" : "") is not a whole number of "
                    + "\(variant.rawValue) records of \(rs) bytes (\(bytes.count / rs) records + \(bytes.count % rs) "
                    + "bytes)"
            )
        }
        return bytes
    }

    /// Class names from a one-per-line file, or nil if the file does not exist.
    static func readClassNames(dir: String, file: String, count: Int) throws -> [String]? {
        let path = dir + "/" + file
        guard FileIO.isRegularFile(path) else { return nil }
        let bytes = try FileIO.readAll(path)
        let text = String(decoding: bytes, as: UTF8.self)
        let names = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
            .map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        guard names.count == count else {
            throw DataError(
                .badClassNames, path: path, "expected \(count) class names (one per line), found \(names.count)")
        }
        return names
    }

    static func hex(_ b: some Collection<UInt8>) -> String {
        b.map {
            let s = String($0, radix: 16); return s.count == 1 ? "0" + s : s
        }.joined(separator: " ")
    }
}

extension Substring {
    func trimmingWhitespace() -> String {
        var s = self[...]
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// Built-in class names (used when the names file is absent).
public enum CIFARNames {
    public static let cifar10 = [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ]
    public static let cifar100Fine = [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
        "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
        "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
        "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
        "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
        "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
        "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
        "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
        "tractor",
        "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ]
    public static let cifar100Coarse = [
        "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
        "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
        "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
        "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
        "vehicles_1", "vehicles_2",
    ]
}
