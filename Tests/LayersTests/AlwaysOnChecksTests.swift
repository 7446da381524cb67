import DCNetLayers
import DCNetTensor
import Foundation
import XCTest

/// The checks that guard memory stay on in release builds (-Ounchecked drops `precondition`):
/// each case runs in a child process of this test bundle, which must stop with the check's message
/// instead of writing out of bounds. `scripts/test` also runs LayersTests as a release build.
final class AlwaysOnChecksTests: XCTestCase {
    static let caseVariable = "DCNET_CHECK_CASE"

    /// Runs in the child: performs the violation named by the environment.
    private func violate(_ name: String) {
        let arena = Arena()
        switch name {
        case "copy":
            arena.tensor(Shape(n: 2, c: 3)).copy(from: arena.tensor(Shape(n: 2, c: 4)))
        case "prefix":
            _ = arena.tensor(Shape(n: 2, c: 3)).prefix(samples: 5)
        case "linear":
            _ = Linear("fc", inFeatures: 8, outFeatures: 2).build(input: Shape(n: 2, c: 9), arena: arena)
        case "conv":
            _ = Conv2D("conv", inChannels: 3, outChannels: 4, kernel: 3).build(
                input: Shape(n: 1, c: 5, h: 8, w: 8), arena: arena)
        default:
            return
        }
    }

    func testShapeChecksStopTheProcess() throws {
        if let name = ProcessInfo.processInfo.environment[Self.caseVariable] {
            violate(name)
            return  // reached only when the check is off: the parent sees exit 0 and fails
        }
        let cases = [
            "copy": "copy between tensors", "prefix": "prefix of 5 samples", "linear": "expects 8 features",
            "conv": "expects 3 channels",
        ]
        for (name, message) in cases {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            child.arguments = ["LayersTests.AlwaysOnChecksTests/testShapeChecksStopTheProcess"]
            child.environment = ProcessInfo.processInfo.environment.merging([Self.caseVariable: name]) { $1 }
            let errors = Pipe()
            child.standardError = errors
            child.standardOutput = FileHandle.nullDevice
            try child.run()
            let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal, "\(name): the violation did not stop the process")
            XCTAssertTrue(output.contains(message), "\(name): the message does not say what was wrong:\n\(output)")
        }
    }
}
