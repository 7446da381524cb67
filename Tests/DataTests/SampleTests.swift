import DCNetFormats
import XCTest

@testable import DCNetData

/// The committed demo sample (data/cifar10-sample) loads with the standard reader.
final class SampleTests: XCTestCase {
    static var sampleDir: String {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(3)  // Tests/DataTests/SampleTests.swift
        return parts.joined(separator: "/") + "/data/cifar10-sample"
    }

    func testCommittedSampleLoads() throws {
        let dir = Self.sampleDir
        guard FileIO.isDirectory(dir) else { return XCTFail("the committed sample is missing at \(dir)") }
        let train = try CIFAR.load(directory: dir, variant: .cifar10, split: .train)
        XCTAssertEqual(train.count, 2000)
        XCTAssertEqual(train.classCounts(), [Int](repeating: 200, count: 10))
        let test = try CIFAR.load(directory: dir, variant: .cifar10, split: .test)
        XCTAssertEqual(test.count, 1000)
        XCTAssertEqual(test.classCounts(), [Int](repeating: 100, count: 10))
        XCTAssertEqual(train.classNames, CIFARNames.cifar10)
        // Real images: not constant, mean pixel in a plausible range.
        let mean = Double(train.pixels.reduce(0) { $0 + Int($1) }) / Double(train.pixels.count)
        XCTAssert((90...150).contains(mean), "mean pixel \(mean)")
    }
}
