# shellcheck shell=bash
# Helpers shared by scripts/* and Tests/integration/*.sh. Source it; do not run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Repository root, whatever the caller's working directory.
DCNET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DCNET_ROOT

# mpi_run NP ARGS...: mpirun with NP ranks and the flags every run here needs:
#   --oversubscribe       more ranks than cores (CI has 2 cores, tests use 3 ranks)
#   --bind-to none        let each rank's OpenBLAS threads use every core instead of
#                         the single core mpirun would otherwise pin the rank to
#   --allow-run-as-root   only when root (CI and dev machines run as root)
# Extra mpirun options can be passed in MPI_RUN_EXTRA (word-split), e.g. "-x FOO".
mpi_run() {
    if [[ $# -lt 2 ]]; then
        echo "usage: mpi_run NP PROGRAM [ARGS...]" >&2
        return 2
    fi
    local np=$1
    shift
    local flags=(-np "$np" --oversubscribe --bind-to none)
    if [[ $(id -u) -eq 0 ]]; then
        flags+=(--allow-run-as-root)
    fi
    # shellcheck disable=SC2206
    local extra=(${MPI_RUN_EXTRA:-})
    mpirun "${flags[@]}" "${extra[@]}" "$@"
}
export -f mpi_run

# source_revision: the commit of this tree that training runs record as DCNET_COMMIT (the binary
# cannot know it), "+modified" when Sources or Package.swift differ from it; empty outside git.
source_revision() {
    local commit
    commit=$(git -C "$DCNET_ROOT" rev-parse --short HEAD 2>/dev/null) || return 0
    if ! git -C "$DCNET_ROOT" diff --quiet HEAD -- Sources Package.swift 2>/dev/null; then
        commit+="+modified"
    fi
    echo "$commit"
}
