import CSignal
import Foundation

/// SIGTERM / SIGUSR1 (batch-system preemption) and SIGINT (Ctrl-C) set a flag in C that the
/// trainer all-reduces at agreement points, so every rank stops at the same step. A second SIGINT
/// ends the process at once (exit status 130).
public enum PreemptionSignal {
    /// The first stop signal received since the last `clear()`, or 0.
    public static var received: Int32 { dcnet_signal_received() }
    /// Whether SIGTERM, SIGUSR1 and SIGINT currently run the handler (another library may replace it).
    public static var isInstalled: Bool { dcnet_signal_is_installed() != 0 }

    /// Installs the handler; idempotent, so callers install again after a library that may have
    /// replaced it.
    public static func install() {
        let error = dcnet_signal_install()
        precondition(error == 0, "sigaction failed: \(String(cString: strerror(error)))")
    }

    public static func clear() { dcnet_signal_clear() }

    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: return "SIGTERM"
        case SIGUSR1: return "SIGUSR1"
        case SIGINT: return "SIGINT"
        default: return "signal \(signal)"
        }
    }
}
