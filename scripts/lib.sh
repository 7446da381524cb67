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

# script_usage FILE: FILE's header comment (line 2 up to `set -euo`) without its '# ', on stderr.
script_usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$1" >&2
}

# --- the simulated cluster (scripts/cluster-sim, and scripts/slurm-sim on top of it) ---

# sim_prefix TOOL: the prefix of the simulated cluster's namespaces, CLUSTER_SIM_PREFIX (default
# dcsim), checked because it names namespaces and interfaces; TOOL names the complaint.
sim_prefix() {
    local prefix=${CLUSTER_SIM_PREFIX:-dcsim}
    if [[ ! $prefix =~ ^[a-z][a-z0-9]{0,7}$ ]]; then
        echo "$1: CLUSTER_SIM_PREFIX '$prefix' must be 1-8 of a-z0-9, starting with a letter" >&2
        return 1
    fi
    echo "$prefix"
}

# sim_state_dir TOOL PREFIX: where TOOL keeps its state: /run/dcnet-TOOL, /run/dcnet-TOOL.PREFIX
# for a prefix other than the default.
sim_state_dir() {
    if [[ $2 == dcsim ]]; then echo "/run/dcnet-$1"; else echo "/run/dcnet-$1.$2"; fi
}

# sim_host_addr I: the address of host I (from 1) on the simulated cluster's switch.
sim_host_addr() { echo "198.18.0.$((10 + $1))"; }
