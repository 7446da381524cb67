import DCNetTensor
import Foundation
import XCTest

final class FastMathTests: XCTestCase {
    func testFastTanhAbsoluteErrorAndOddness() {
        var worst = 0.0
        var x: Float = -12
        while x <= 12 {
            worst = max(worst, abs(Double(fastTanh(x)) - Foundation.tanh(Double(x))))
            XCTAssertEqual(fastTanh(-x), -fastTanh(x))
            x += 0.00071
        }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(fastTanh(0), 0)
        XCTAssertEqual(fastTanh(1e-8), 1e-8, accuracy: 1e-12)
    }

    func testFastExpRelativeError() {
        var worst = 0.0
        var x: Float = -87
        while x <= 88 {
            let approx = Double(fastExp(x)), exact = Foundation.exp(Double(x))
            worst = max(worst, abs(approx - exact) / exact)
            x += 0.0017
        }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(fastExp(0), 1)
        // Clamped, not overflowing or flushing to 0.
        XCTAssertTrue(fastExp(1000).isFinite)
        XCTAssertGreaterThan(fastExp(-1000), 0)
    }

    func testFastAcosAbsoluteError() {
        var worst = 0.0
        var c: Float = -1
        while c <= 1 {
            worst = max(worst, abs(Double(fastAcos(c)) - Foundation.acos(Double(c))))
            c += 0.00003
        }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(fastAcos(1), 0)
        XCTAssertEqual(fastAcos(-1), Float.pi, accuracy: 1e-6)
        XCTAssertEqual(fastAcos(0), Float.pi / 2, accuracy: 1e-6)
        // Slightly outside [-1, 1] from rounding: clamped, not NaN.
        XCTAssertEqual(fastAcos(1.0000001), 0)
        XCTAssertEqual(fastAcos(-1.0000001), Float.pi, accuracy: 1e-6)
    }

    func testFastLog1pRelativeError() {
        var worst = 0.0
        var x: Float = 1e-9
        while x < 1e6 {
            let exact = Foundation.log1p(Double(x))
            worst = max(worst, abs(Double(fastLog1p(x)) - exact) / exact)
            x *= 1.0007
        }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(fastLog1p(0), 0)
    }

    func testPartialSums() {
        let v = (0..<1003).map { Float($0 % 17) - 8 }
        let w = (0..<1003).map { Float($0 % 5) }
        v.withUnsafeBufferPointer { a in
            w.withUnsafeBufferPointer { b in
                XCTAssertEqual(sumFloats(a.baseAddress!, 1003), v.reduce(0, +))
                XCTAssertEqual(dotFloats(a.baseAddress!, b.baseAddress!, 1003), zip(v, w).map(*).reduce(0, +))
            }
        }
    }
}
