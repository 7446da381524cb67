# shellcheck shell=bash
# Shared by the Slurm tests (Tests/integration/slurm.sh, sweep.sh; sourced after common.bash, never
# run): a simulated Slurm cluster of the test's own and the helpers that watch its jobs.
#
# Set CLUSTER_SIM_PREFIX before sourcing: a prefix of its own per test (namespaces PREFIX-*, hosts
# PREFIX1, PREFIX2), so that a test neither disturbs nor is disturbed by other users of the
# default dcsim cluster (scripts/bench multihost, multihost.sh run by hand), whose
# `cluster-sim up/down` would rebuild the hosts under Slurm's daemons.
: "${CLUSTER_SIM_PREFIX:?set CLUSTER_SIM_PREFIX before sourcing slurm-common.bash}"
export CLUSTER_SIM_PREFIX
SIM=${SLURM_SIM_CLUSTER_SIM:-$DCNET_ROOT/scripts/cluster-sim}
SLURM_SIM=$DCNET_ROOT/scripts/slurm-sim
# shellcheck disable=SC2034  # used by the tests that source this
PREFIX=$CLUSTER_SIM_PREFIX

# start_slurm_sim NAME: 2 simulated nodes with Slurm's daemons, removed again when the test exits
# however it exits (the EXIT trap); sets LOGS, the directory of Slurm's logs.
start_slurm_sim() {
    # shellcheck disable=SC2064  # the name now, not at exit
    trap "stop_slurm_sim '$1'" EXIT
    local started=$SECONDS
    "$SLURM_SIM" up 2 >"$WORK/up.log" 2>&1 || { show "slurm-sim up" "$WORK/up.log"; fail "scripts/slurm-sim up 2 failed"; }
    echo "$1: Slurm up in $((SECONDS - started)) s: $(head -1 "$WORK/up.log")"
    # shellcheck disable=SC2034  # used by the tests that source this
    LOGS=$(dirname "$("$SLURM_SIM" conf)")/log
}

# stop_slurm_sim NAME: everything start_slurm_sim made (a cut link first: down must reach host 2).
stop_slurm_sim() {
    "$SIM" link 2 up >/dev/null 2>&1 || true
    "$SLURM_SIM" down >/dev/null 2>&1 || echo "$1: warning: slurm-sim down failed" >&2
    "$SIM" down >/dev/null 2>&1 || echo "$1: warning: cluster-sim down failed" >&2
    [[ -n ${KEEP_WORK:-} ]] || rm -rf "$WORK"
}

sx() { "$SLURM_SIM" exec "$@"; }

# field JOB NAME: one field of `scontrol show job` (finished jobs stay there for MinJobAge).
field() { sx scontrol -o show job "$1" 2>/dev/null | grep -oE "(^| )$2=[^ ]*" | cut -d= -f2-; }

# wait_state JOB SECONDS STATE...: until the job is in one of the states; fails otherwise.
wait_state() {
    local job=$1 limit=$2 state i
    shift 2
    for ((i = 0; i < limit * 2; i++)); do
        state=$(field "$job" JobState)
        for s in "$@"; do [[ $state == "$s" ]] && return 0; done
        sleep 0.5
    done
    echo "$(basename "$0"): job $job is $state after ${limit}s, expected $*" >&2
    return 1
}

# release JOB: a requeued job waits ~2 min (Slurm's fixed delay before a requeued batch job may
# start again, so that the previous run has ended everywhere); let it start as soon as the
# previous run's slurmstepd processes are gone (earlier, its new batch step fails to launch),
# and not in the same second as the requeue: slurmd revokes the old run's credential with a
# timestamp in whole seconds and refuses any credential of that job created up to that second
# ("Killing non-startable batch job: Job credential revoked", seen once when released 0.2 s
# after the requeue).
release() {
    if [[ $(field "$1" JobState) == PENDING && $(field "$1" Reason) == BeginTime &&
        -z $(in_hosts "slurmstepd: \\[$1\\.") ]]; then
        sleep 2
        sx scontrol update JobId="$1" StartTime=now >/dev/null 2>&1 || true
    fi
}

# losses FILE: "step loss" per progress record, full precision; of a step written twice (a
# re-run after a resume) the last record counts.
losses() {
    python3 -c '
import json, sys
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("kind") == "progress":
        seen[r["step"]] = repr(r["loss"])
for s in sorted(seen):
    print(s, seen[s])' "$1"
}

# in_hosts PATTERN: processes in the simulated hosts whose command line matches.
in_hosts() {
    local h p
    for h in 1 2; do
        for p in $("$SIM" pids "$h" 2>/dev/null); do
            if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -Eq "$1"; then
                echo "host $h: $(tr '\0' ' ' <"/proc/$p/cmdline" | cut -c1-120)"
            fi
        done
    done
    return 0
}
