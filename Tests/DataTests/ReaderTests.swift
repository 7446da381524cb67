import DCNetFormats
import TestSupport
import XCTest

@testable import DCNetData

final class ReaderTests: XCTestCase {
    func checkRoundTrip(_ variant: CIFARVariant, split: Split, gzip: Bool, subdir: String? = nil) throws {
        let dir = TempDir()
        let n = variant.fileNames(split: split).count * 7 + 3
        let images = syntheticImages(count: n, variant: variant, seed: UInt64(n))
        writeSplit(images, variant: variant, split: split, into: dir, subdir: subdir, gzip: gzip)
        let loaded = try CIFAR.load(directory: dir.path, variant: variant, split: split)
        XCTAssertEqual(loaded.count, n)
        XCTAssertEqual(loaded.pixels, images.pixels)
        XCTAssertEqual(loaded.labels, images.labels)
        XCTAssertEqual(loaded.coarseLabels, images.coarseLabels)
        XCTAssertEqual(loaded.classCount, variant.classCount)
        XCTAssertEqual(loaded.classNames, variant.defaultClassNames)
    }

    func testCIFAR10PlainAndGzip() throws {
        for split in Split.allCases {
            try checkRoundTrip(.cifar10, split: split, gzip: false)
            try checkRoundTrip(.cifar10, split: split, gzip: true)
        }
    }
    func testCIFAR100PlainAndGzip() throws {
        for split in Split.allCases {
            try checkRoundTrip(.cifar100, split: split, gzip: false)
            try checkRoundTrip(.cifar100, split: split, gzip: true)
        }
    }
    func testArchiveSubdirectory() throws {
        try checkRoundTrip(.cifar10, split: .train, gzip: false, subdir: "cifar-10-batches-bin")
        try checkRoundTrip(.cifar100, split: .test, gzip: true, subdir: "cifar-100-binary")
    }

    func testKnownBytesLayout() throws {
        // One hand-built CIFAR-100 record: coarse 3, fine 42, R plane = 1, G = 2, B = y*32+x mod 256.
        let dir = TempDir()
        var rec: [UInt8] = [3, 42]
        rec += [UInt8](repeating: 1, count: 1024) + [UInt8](repeating: 2, count: 1024)
        rec += (0..<1024).map { UInt8($0 % 256) }
        dir.write("test.bin", rec)
        let t = try CIFAR.load(directory: dir.path, variant: .cifar100, split: .test)
        XCTAssertEqual(t.labels, [42]); XCTAssertEqual(t.coarseLabels, [3])
        XCTAssertEqual(t.pixel(0, 0, 5, 5), 1); XCTAssertEqual(t.pixel(0, 1, 0, 0), 2)
        XCTAssertEqual(t.pixel(0, 2, 1, 3), 35)
        XCTAssertEqual(t.classNames[42], "leopard")
        XCTAssertEqual(t.coarseClassNames?[3], "food_containers")
    }

    func testPrefersExistingVariantAndMixed() throws {
        // Some files plain, some gzip: each is found.
        let dir = TempDir()
        let images = syntheticImages(count: 10, variant: .cifar10)
        let recs = writeSplit(images, variant: .cifar10, split: .train, into: dir, gzip: false)
        _ = system("gzip -n '\(dir.file("data_batch_3.bin"))'")
        XCTAssertFalse(FileIO.exists(dir.file("data_batch_3.bin")))
        let loaded = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .train)
        XCTAssertEqual(loaded.pixels, images.pixels)
        XCTAssertEqual(recs.count, 5)
    }

    func testMultiMemberGzip() throws {
        let dir = TempDir()
        let images = syntheticImages(count: 5, variant: .cifar10)
        let recs = images.encodedRecords(variant: .cifar10)
        let cut = 3073 * 2 + 100  // split mid-record: members are byte streams
        let gz = Gzip.compress(Array(recs[..<cut])) + Gzip.compress(Array(recs[cut...]))
        dir.write("test_batch.bin.gz", gz)
        let t = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
        XCTAssertEqual(t.pixels, images.pixels)
        XCTAssertEqual(t.labels, images.labels)
    }

    func testClassNamesFile() throws {
        let dir = TempDir()
        writeSplit(
            syntheticImages(count: 4, variant: .cifar10), variant: .cifar10, split: .test, into: dir, gzip: false)
        dir.write("batches.meta.txt", Array("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n".utf8))
        XCTAssertEqual(
            try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test).classNames,
            ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"])
        dir.write("batches.meta.txt", Array("a\nb\n".utf8))
        assertDataError(.badClassNames, mentioning: "batches.meta.txt") {
            _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
        }
        XCTAssertEqual(CIFARNames.cifar100Fine.count, 100)
        XCTAssertEqual(Set(CIFARNames.cifar100Fine).count, 100)
        XCTAssertEqual(CIFARNames.cifar100Coarse.count, 20)
    }

    // MARK: malformed input

    func testMissingDirectory() {
        assertDataError(.missingDirectory, mentioning: "/nonexistent/dcnet-cifar") {
            _ = try CIFAR.load(directory: "/nonexistent/dcnet-cifar", variant: .cifar10, split: .train)
        }
    }

    func testMissingFile() {
        let dir = TempDir()
        // Empty directory: nothing found at all.
        assertDataError(.missingFile, mentioning: "data_batch_1.bin.gz") {
            _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .train)
        }
        // Four of five batches present.
        writeSplit(
            syntheticImages(count: 10, variant: .cifar10), variant: .cifar10, split: .train, into: dir, gzip: true)
        unlink(dir.file("data_batch_4.bin.gz"))
        assertDataError(.missingFile, mentioning: "data_batch_4.bin", "data_batch_4.bin.gz") {
            _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .train)
        }
    }

    func testPartialRecord() {
        for gz in [false, true] {
            let dir = TempDir()
            var recs = syntheticImages(count: 3, variant: .cifar10).encodedRecords(variant: .cifar10)
            recs.removeLast(17)
            if gz { dir.write("test_batch.bin.gz", Gzip.compress(recs)) } else { dir.write("test_batch.bin", recs) }
            assertDataError(.partialRecord, mentioning: "test_batch.bin", "\(3 * 3073 - 17)", "3073") {
                _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
            }
        }
        // A CIFAR-10 file read as CIFAR-100 is also caught (3073·2 is not a multiple of 3074).
        let dir = TempDir()
        dir.write("train.bin", syntheticImages(count: 2, variant: .cifar10).encodedRecords(variant: .cifar10))
        assertDataError(.partialRecord, mentioning: "train.bin") {
            _ = try CIFAR.load(directory: dir.path, variant: .cifar100, split: .train)
        }
    }

    func testLabelOutOfRange() {
        let dir = TempDir()
        var recs = syntheticImages(count: 4, variant: .cifar10).encodedRecords(variant: .cifar10)
        recs[2 * 3073] = 10
        dir.write("test_batch.bin", recs)
        assertDataError(.labelOutOfRange, mentioning: "test_batch.bin", "record 2", "label 10") {
            _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
        }

        let dir100 = TempDir()
        var r100 = syntheticImages(count: 3, variant: .cifar100).encodedRecords(variant: .cifar100)
        r100[1 * 3074 + 1] = 100
        dir100.write("test.bin.gz", Gzip.compress(r100))
        assertDataError(.labelOutOfRange, mentioning: "test.bin.gz") {
            _ = try CIFAR.load(directory: dir100.path, variant: .cifar100, split: .test)
        }
        r100[1 * 3074 + 1] = 5; r100[0] = 20  // coarse label out of range
        dir100.write("test.bin.gz", Gzip.compress(r100))
        assertDataError(.labelOutOfRange, mentioning: "test.bin.gz") {
            _ = try CIFAR.load(directory: dir100.path, variant: .cifar100, split: .test)
        }
    }

    func testCorruptGzip() {
        let recs = syntheticImages(count: 4, variant: .cifar10).encodedRecords(variant: .cifar10)
        let good = Gzip.compress(recs)
        // Flip bytes in the middle of the deflate data.
        var bad = good
        for k in stride(from: bad.count / 2, to: bad.count / 2 + 8, by: 1) { bad[k] ^= 0x5A }
        let dir = TempDir()
        dir.write("test_batch.bin.gz", bad)
        assertDataError(.corruptGzip, mentioning: "test_batch.bin.gz") {
            _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
        }
        // Damaged CRC in the trailer.
        var badCRC = good
        badCRC[badCRC.count - 6] ^= 0xFF
        dir.write("test_batch.bin.gz", badCRC)
        assertDataError(.corruptGzip, mentioning: "test_batch.bin.gz") {
            _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
        }
        // Not gzip at all but named .gz.
        dir.write("test_batch.bin.gz", Array(recs.prefix(100)))
        assertDataError(.corruptGzip, mentioning: "test_batch.bin.gz") {
            _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
        }
    }

    func testTruncatedGzip() {
        let recs = syntheticImages(count: 4, variant: .cifar10).encodedRecords(variant: .cifar10)
        let good = Gzip.compress(recs)
        let dir = TempDir()
        for keep in [good.count / 2, good.count - 4, 12] {
            dir.write("test_batch.bin.gz", Array(good.prefix(keep)))
            assertDataError(.truncatedGzip, mentioning: "test_batch.bin.gz") {
                _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
            }
        }
    }

    func testEmptyFile() {
        let dir = TempDir()
        dir.write("test_batch.bin", [])
        assertDataError(.emptyFile, mentioning: "test_batch.bin") {
            _ = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
        }
        let dir2 = TempDir()
        dir2.write("test_batch.bin.gz", Gzip.compress([]))
        assertDataError(.emptyFile, mentioning: "test_batch.bin.gz") {
            _ = try CIFAR.load(directory: dir2.path, variant: .cifar10, split: .test)
        }
    }

    func testSubsetAndPrefix() {
        let images = syntheticImages(count: 6, variant: .cifar100)
        let s = images.subset(indices: [4, 1])
        XCTAssertEqual(s.count, 2)
        XCTAssertEqual(Array(s.pixels[0..<3072]), Array(images.pixels[4 * 3072..<5 * 3072]))
        XCTAssertEqual(s.labels, [images.labels[4], images.labels[1]])
        XCTAssertEqual(s.coarseLabels, [images.coarseLabels![4], images.coarseLabels![1]])
        XCTAssertEqual(images.prefix(3).labels, Array(images.labels[0..<3]))
        XCTAssertEqual(images.prefix(100).count, 6)
    }

    func testCRC32KnownValue() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        var c = CRC32(); c.update(Array("1234".utf8)); c.update(Array("56789".utf8))
        XCTAssertEqual(c.value, 0xCBF4_3926)
    }

    /// A full-size test split (10,000 records, gzip level 1) comes back record for record.
    func testLoadLarge() throws {
        let dir = TempDir()
        let images = syntheticImages(count: 10_000, variant: .cifar10)
        dir.write("test_batch.bin.gz", Gzip.compress(images.encodedRecords(variant: .cifar10), level: 1))
        let t = try CIFAR.load(directory: dir.path, variant: .cifar10, split: .test)
        XCTAssertEqual(t.count, 10_000)
        XCTAssertEqual(t.labels, images.labels)
        XCTAssertTrue(t.pixels == images.pixels, "pixels differ after the gzip round trip")
    }
}
