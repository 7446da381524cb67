// Stop requests by signal (SIGTERM, SIGUSR1, SIGINT) for the trainer. The flag lives in C because
// a Swift static may be reached through lazy initialisation, which is not async-signal-safe.
#ifndef DCNET_SIGNAL_H
#define DCNET_SIGNAL_H

/// Installs the handler for SIGTERM, SIGUSR1 and SIGINT (again if something replaced it).
/// Returns 0, or the errno of the sigaction that failed.
int dcnet_signal_install(void);
/// Whether all three signals currently run this handler.
int dcnet_signal_is_installed(void);
/// The first stop signal received since the last clear, or 0.
int dcnet_signal_received(void);
void dcnet_signal_clear(void);

#endif
