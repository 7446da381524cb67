#include "dcnet_signal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t received = 0;

static const int stopSignals[] = {SIGTERM, SIGUSR1, SIGINT};
enum { stopSignalCount = sizeof stopSignals / sizeof stopSignals[0] };

static void handle(int sig) {
    // A second Ctrl-C means the user will not wait for the next step boundary; write and _exit
    // are async-signal-safe, exit (atexit handlers, stdio) is not.
    if (sig == SIGINT && received == SIGINT) {
        static const char message[] = "dcnet-dist: second SIGINT: exiting at once (no checkpoint)\n";
        ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
        (void)ignored;
        _exit(130);
    }
    // The first signal names the stop; later ones (a launcher repeating SIGTERM) change nothing.
    if (received == 0) received = sig;
}

int dcnet_signal_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handle;
    sigemptyset(&action.sa_mask);
    // Reads and waits in progress resume instead of failing with EINTR: the flag is polled.
    action.sa_flags = SA_RESTART;
    for (int i = 0; i < stopSignalCount; i++) {
        if (sigaction(stopSignals[i], &action, NULL) != 0) return errno;
    }
    return 0;
}

int dcnet_signal_is_installed(void) {
    for (int i = 0; i < stopSignalCount; i++) {
        struct sigaction current;
        if (sigaction(stopSignals[i], NULL, &current) != 0 || current.sa_handler != handle) return 0;
    }
    return 1;
}

int dcnet_signal_received(void) { return received; }

void dcnet_signal_clear(void) { received = 0; }
