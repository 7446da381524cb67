import XCTest
import Foundation
import DCNetTensor

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
