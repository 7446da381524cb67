import Foundation
import XCTest

@testable import DCNetTraining

/// The stop-signal flag: set by the handler for each stop signal, the first one kept, cleared on request.
final class PreemptionSignalTests: XCTestCase {
    override func tearDown() {
        // Later tests run the trainer in this process: a left-over flag would stop them.
        PreemptionSignal.clear()
    }

    func testEachStopSignalSetsTheFlagAndTheFirstOneIsKept() {
        PreemptionSignal.install()
        XCTAssertTrue(PreemptionSignal.isInstalled)
        for signal in [SIGTERM, SIGUSR1, SIGINT] {
            PreemptionSignal.clear()
            XCTAssertEqual(PreemptionSignal.received, 0)
            raise(signal)
            XCTAssertEqual(PreemptionSignal.received, signal, PreemptionSignal.name(signal))
            if signal != SIGINT {
                // A second SIGINT would end the process; SIGTERM and SIGUSR1 only keep the first name.
                raise(signal == SIGTERM ? SIGUSR1 : SIGTERM)
                XCTAssertEqual(PreemptionSignal.received, signal, "the first signal names the stop")
            }
        }
    }

    func testInstallingAgainAfterAnotherHandlerRestoresIt() {
        PreemptionSignal.install()
        let previous = signal(SIGTERM, SIG_IGN)
        defer { signal(SIGTERM, previous) }
        XCTAssertFalse(PreemptionSignal.isInstalled)
        PreemptionSignal.install()
        XCTAssertTrue(PreemptionSignal.isInstalled)
    }
}
