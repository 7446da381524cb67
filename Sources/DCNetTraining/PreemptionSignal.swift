import Foundation

/// SIGTERM / SIGUSR1 (batch-system preemption) set a flag that the trainer all-reduces at the next
/// step boundary, so every rank stops at the same step.
public enum PreemptionSignal {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    public static var received: Bool { flag != 0 }
    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in PreemptionSignal.flag = 1 }
        signal(SIGTERM, handler)
        signal(SIGUSR1, handler)
    }
}
