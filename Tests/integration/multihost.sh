#!/usr/bin/env bash
# Multi-host runs on a test cluster of network-namespace hosts (scripts/cluster-sim), TCP only:
#   1. 2 hosts × 1 rank with --sync-batchnorm: the same step losses as 1 rank (to float rounding)
#   2. 2 hosts × 2 ranks: trains, rank 0 checkpoints, --resume continues bit-exactly
#   3. kill -9 of a rank on host 2: the job ends non-zero within 10 s
#   4. host 2's link goes down mid-run: the job ends non-zero within --collective-timeout + 30 s,
#      naming the unreachable rank and host; no mpirun, daemon or rank is left in any namespace;
#      the last checkpoint loads and --resume continues once the link is back
#   5. a rank on host 2 stopped with SIGSTOP: the job ends within the timeout + 30 s, naming it
#   6. SIGUSR1 to mpirun: every rank on both hosts stops at the same step, rank 0 checkpoints, exit 0
# Needs root and network namespaces; without them it says so and skips (exit 0).
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

SIM=$DCNET_ROOT/scripts/cluster-sim
require_namespaces "to create network namespaces"

cleanup_cluster() {
    "$SIM" down >/dev/null 2>&1 || echo "multihost.sh: warning: cluster-sim down failed" >&2
    rm -rf "$WORK"
}
trap cleanup_cluster EXIT
"$SIM" up 2 >/dev/null || fail "cluster-sim up 2 failed"

make_data "$WORK/data" 40 8
TIMEOUT=20
# No BLAS threads beyond one per rank: each host has one core.
TRAIN=(train --data "$WORK/data" --batch-size 8 "${SMALL[@]}")

# sim_run NP OUT ERR ARGS...: the job across the hosts, 2 ranks per host when NP is 4.
sim_run() {
    local np=$1 out=$2 err=$3
    shift 3
    timeout --kill-after=10 300 "$SIM" run "$np" "$DCNET_BIN" "$@" >"$out" 2>"$err"
}

# losses FILE: "step loss" per progress record of a metrics file, full precision.
losses() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("kind") == "progress":
        print(r["step"], repr(r["loss"]))' "$1"
}

# wait_for_step FILE N RCFILE: until FILE shows step N (or the job ended).
wait_for_step() {
    local i
    for i in $(seq 900); do
        grep -q "^step *$2 " "$1" 2>/dev/null && return 0
        [[ -f $3 ]] && return 1
        sleep 0.2
    done
    return 1
}

# rank_pids_on H: pids of dcnet-dist ranks of this test inside host H.
rank_pids_on() {
    local p
    for p in $("$SIM" pids "$1"); do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "dcnet-dist train --data $WORK/data" && echo "$p"
    done
    return 0
}

# left_in_hosts: every process still inside a simulated host.
left_in_hosts() { "$SIM" pids 1; "$SIM" pids 2; }

# start_background NAME NP ARGS...: the job in the background; its status lands in $WORK/NAME.rc.
start_background() {
    local name=$1 np=$2
    shift 2
    rm -f "$WORK/$name.rc"
    ( rc=0; sim_run "$np" "$WORK/$name.out" "$WORK/$name.err" "$@" || rc=$?; echo $rc >"$WORK/$name.rc" ) &
}

# ---- 1. synchronised BatchNorm across hosts = one process
"$DCNET_BIN" "${TRAIN[@]}" --epochs 1 --max-steps 4 --sync-batchnorm --metrics "$WORK/one.jsonl" \
    >"$WORK/one.out" 2>"$WORK/one.err" || { show stderr "$WORK/one.err"; fail "(1) the one-rank run failed"; }
sim_run 2 "$WORK/two.out" "$WORK/two.err" "${TRAIN[@]}" --epochs 1 --max-steps 4 --sync-batchnorm \
    --metrics "$WORK/two.jsonl" || { show stdout "$WORK/two.out"; show stderr "$WORK/two.err"; fail "(1) the 2-host run failed"; }
grep -q "2 rank(s)" "$WORK/two.out" || { show stdout "$WORK/two.out"; fail "(1) not a 2-rank run"; }
python3 - "$WORK/one.jsonl" "$WORK/two.jsonl" <<'PY' || fail "(1) 2 hosts with --sync-batchnorm differ from 1 rank"
import json, sys
def losses(path):
    return [json.loads(l)["loss"] for l in open(path) if json.loads(l).get("kind") == "progress"]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert len(a) == len(b) == 4, (a, b)
worst = max(abs(x - y) / max(abs(x), 1e-6) for x, y in zip(a, b))
print(f"multihost.sh: (1) largest relative loss difference {worst:.2e} over {len(a)} steps")
sys.exit(0 if worst < 1e-4 else 1)
PY
pass "(1) 2 hosts × 1 rank with --sync-batchnorm match 1 rank"

# ---- 2. 2 hosts × 2 ranks: checkpoint, resume bit-exactly
sim_run 4 "$WORK/straight.out" "$WORK/straight.err" "${TRAIN[@]}" --epochs 2 --max-steps 6 \
    --metrics "$WORK/straight.jsonl" || { show stderr "$WORK/straight.err"; fail "(2) the 6-step run failed"; }
grep -q "4 rank(s)" "$WORK/straight.out" || { show stdout "$WORK/straight.out"; fail "(2) not a 4-rank run"; }
sim_run 4 "$WORK/first.out" "$WORK/first.err" "${TRAIN[@]}" --epochs 2 --max-steps 4 \
    --checkpoint-dir "$WORK/ckpt2" --checkpoint-every 2 --metrics "$WORK/resumed.jsonl" \
    || { show stderr "$WORK/first.err"; fail "(2) the first 4 steps failed"; }
[[ -f $WORK/ckpt2/ckpt-00000004.safetensors ]] || fail "(2) rank 0 wrote no checkpoint at step 4: $(ls "$WORK/ckpt2")"
sim_run 4 "$WORK/second.out" "$WORK/second.err" "${TRAIN[@]}" --epochs 2 --max-steps 6 \
    --checkpoint-dir "$WORK/ckpt2" --resume --metrics "$WORK/resumed.jsonl" \
    || { show stderr "$WORK/second.err"; fail "(2) the resumed run failed"; }
grep -q "resumed from .*ckpt-00000004.safetensors" "$WORK/second.out" || { show stdout "$WORK/second.out"; fail "(2) did not resume from step 4"; }
diff <(losses "$WORK/straight.jsonl") <(losses "$WORK/resumed.jsonl") >"$WORK/diff2" \
    || { cat "$WORK/diff2"; fail "(2) the resumed losses differ from the uninterrupted run"; }
pass "(2) 2 hosts × 2 ranks: checkpoint at step 4, resumed steps 5–6 bit-identical to the uninterrupted run"

# ---- 3. kill -9 of a rank on host 2
start_background kill 2 "${TRAIN[@]}" --epochs 200
wait_for_step "$WORK/kill.out" 3 "$WORK/kill.rc" || { show stderr "$WORK/kill.err"; fail "(3) training did not start"; }
victim=$(rank_pids_on 2 | head -1)
[[ -n $victim ]] || fail "(3) no rank found on host 2"
kill -9 "$victim"
killed_at=$SECONDS
wait
elapsed=$((SECONDS - killed_at))
rc=$(cat "$WORK/kill.rc")
[[ $rc -ne 0 ]] || fail "(3) the job exited 0 after a rank was killed"
((elapsed <= 10)) || { show stderr "$WORK/kill.err"; fail "(3) the job took ${elapsed}s to end after kill -9 (limit 10 s)"; }
pass "(3) kill -9 of a rank on host 2: the job ended in ${elapsed}s with exit $rc"

# ---- 4. partition: host 2's link goes down mid-run
start_background part 2 "${TRAIN[@]}" --epochs 200 --collective-timeout $TIMEOUT \
    --checkpoint-dir "$WORK/ckpt4" --checkpoint-every 3
wait_for_step "$WORK/part.out" 7 "$WORK/part.rc" || { show stderr "$WORK/part.err"; fail "(4) training did not reach step 7"; }
"$SIM" link 2 down
cut_at=$SECONDS
wait
elapsed=$((SECONDS - cut_at))
rc=$(cat "$WORK/part.rc")
for _ in $(seq 60); do [[ -z $(left_in_hosts) ]] && break; sleep 0.5; done
gone_after=$((SECONDS - cut_at))
left=$(left_in_hosts)
"$SIM" link 2 up
[[ $rc -ne 0 && $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/part.err"; fail "(4) partition: exit $rc (0, or the test's own timeout)"; }
((elapsed <= TIMEOUT + 30)) || fail "(4) partition: the job took ${elapsed}s to end (limit $TIMEOUT+30 s)"
# With cluster/openmpi-fault.conf the launcher's keepalive notices the lost daemon (~11 s) before
# the collective timeout; rank 0 then names the lost ranks when the launcher's SIGTERM arrives.
grep -Eq "collective timeout|stop signal while stalled" "$WORK/part.err" \
    || { show stderr "$WORK/part.err"; fail "(4) no message from the waiting rank"; }
grep -Eq "have not arrived \(or cannot be reached\): rank 1 \(dcsim2\)" "$WORK/part.err" \
    || { show stderr "$WORK/part.err"; fail "(4) the message does not name rank 1 on host dcsim2"; }
[[ -z $left ]] || { ps -o pid,stat,args -p $left; fail "(4) processes left in the simulated hosts ${gone_after}s after the cut"; }
((gone_after <= TIMEOUT + 30)) || fail "(4) the last process in a simulated host went ${gone_after}s after the cut"
last=$(ls "$WORK/ckpt4"/ckpt-*.safetensors 2>/dev/null | tail -1 || true)
[[ -n $last ]] || fail "(4) no checkpoint written before the partition"
last_step=$(ckpt_step "$last")
sim_run 2 "$WORK/part2.out" "$WORK/part2.err" "${TRAIN[@]}" --epochs 200 --max-steps $((last_step + 2)) \
    --checkpoint-dir "$WORK/ckpt4" --resume || { show stderr "$WORK/part2.err"; fail "(4) resuming after the partition failed"; }
grep -q "resumed from $last" "$WORK/part2.out" || { show stdout "$WORK/part2.out"; fail "(4) did not resume from $last"; }
pass "(4) partition: ended in ${elapsed}s with exit $rc, all processes gone after ${gone_after}s; resumed from step $last_step: $(grep -m1 'have not arrived' "$WORK/part.err" | sed 's/^dcnet-dist: //')"

# ---- 5. a stopped rank on host 2
start_background stop 2 "${TRAIN[@]}" --epochs 200 --collective-timeout $TIMEOUT
wait_for_step "$WORK/stop.out" 3 "$WORK/stop.rc" || { show stderr "$WORK/stop.err"; fail "(5) training did not start"; }
victim=$(rank_pids_on 2 | head -1)
[[ -n $victim ]] || fail "(5) no rank found on host 2"
kill -STOP "$victim"
stopped_at=$SECONDS
wait
elapsed=$((SECONDS - stopped_at))
kill -CONT "$victim" 2>/dev/null || true
rc=$(cat "$WORK/stop.rc")
[[ $rc -ne 0 && $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/stop.err"; fail "(5) stopped rank: exit $rc"; }
((elapsed <= TIMEOUT + 30)) || fail "(5) stopped rank: the job took ${elapsed}s to end (limit $TIMEOUT+30 s)"
grep -Eq "have not arrived \(or cannot be reached\): rank 1 \(dcsim2\)" "$WORK/stop.err" \
    || { show stderr "$WORK/stop.err"; fail "(5) the message does not name rank 1 on dcsim2"; }
pass "(5) SIGSTOP of rank 1 on host 2: ended in ${elapsed}s with exit $rc"

# ---- 6. SIGUSR1 to mpirun: all ranks stop at one step, rank 0 checkpoints, exit 0
start_background usr1 4 "${TRAIN[@]}" --epochs 200 --checkpoint-dir "$WORK/ckpt6"
wait_for_step "$WORK/usr1.out" 3 "$WORK/usr1.rc" || { show stderr "$WORK/usr1.err"; fail "(6) training did not start"; }
launcher=$(pgrep -f "mpirun .*dcnet-dist train --data $WORK/data" | head -1)
[[ -n $launcher ]] || fail "(6) no mpirun process"
kill -USR1 "$launcher"
wait
rc=$(cat "$WORK/usr1.rc")
[[ $rc -eq 0 ]] || { show stdout "$WORK/usr1.out"; show stderr "$WORK/usr1.err"; fail "(6) SIGUSR1: exit $rc, expected 0"; }
stop_step=$(sed -n 's/^stop requested.*checkpointing at step \([0-9]*\)$/\1/p' "$WORK/usr1.out")
[[ -n $stop_step ]] || { show stdout "$WORK/usr1.out"; fail "(6) no 'stop requested' line"; }
[[ -f $WORK/ckpt6/$(printf 'ckpt-%08d.safetensors' "$stop_step") ]] || fail "(6) no checkpoint at step $stop_step: $(ls "$WORK/ckpt6")"
pass "(6) SIGUSR1 to mpirun: 4 ranks on 2 hosts stopped at step $stop_step, checkpointed, exit 0"
