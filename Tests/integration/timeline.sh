#!/usr/bin/env bash
# train --timeline: one Chrome trace (Trace Event JSON) of every rank, written by rank 0:
#   (a) 2 ranks on this machine, 3 buckets of gradients: the file is valid JSON; every rank and every
#       step of --timeline-steps is there (and no other step); each rank has its compute and all-reduce
#       tracks; every bucket's all-reduce starts after the backward of every layer it carries ended;
#       the checkpoint after the range's last step is in; the alignment error is printed;
#   (b) 2 namespace hosts (scripts/cluster-sim): each rank's track is named after its host;
#   (c) a bad --timeline-steps is refused naming the flag and the value.
# (b) needs root and network namespaces; without them it says so and is skipped.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

make_data "$WORK/data" 40 8
train=(train --data "$WORK/data" --batch-size 8 "${SMALL[@]}" --bucket-mb 0.002 --max-steps 7
       --checkpoint-dir "$WORK/ckpt" --checkpoint-every 5 --timeline-steps 3:5)

# check_trace FILE RANKS: the checks of (a); prints the host of each rank's track.
check_trace() {
    python3 - "$@" <<'PY'
import json, sys
path, ranks = sys.argv[1], int(sys.argv[2])
trace = json.load(open(path))
events = trace["traceEvents"]
spans = [e for e in events if e["ph"] == "X"]
names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
assert sorted(names) == list(range(ranks)), names
for r in range(ranks):
    assert threads.get((r, 0)) == "compute" and threads.get((r, 1)) == "all-reduce", threads
    steps = sorted({e["args"]["step"] for e in spans if e["pid"] == r})
    assert steps == [3, 4, 5], (r, steps)
    for step in steps:
        mine = [e for e in spans if e["pid"] == r and e["args"]["step"] == step]
        cats = {e["cat"] for e in mine}
        for c in ("data", "forward", "backward", "communication", "update"):
            assert c in cats, (r, step, c, cats)
        backward = {e["args"]["layer"]: e for e in mine if e["cat"] == "backward"}
        buckets = [e for e in mine if e["name"].startswith("all-reduce bucket")]
        assert len(buckets) >= 3, (r, step, len(buckets))
        for b in buckets:
            for layer in range(b["args"]["first_layer"], b["args"]["last_layer"] + 1):
                end = backward[layer]["ts"] + backward[layer]["dur"]
                assert b["ts"] >= end - 0.001, (r, step, b["name"], layer, b["ts"], end)
    assert any(e["cat"] == "checkpoint" and e["args"]["step"] == 5 for e in spans if e["pid"] == r), r
for r in range(ranks):
    print(names[r])
PY
}

# (a)
timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${train[@]}" --timeline "$WORK/a.json" \
    >"$WORK/a.out" 2>"$WORK/a.err" || { show stderr "$WORK/a.err"; fail "(a) the run failed"; }
grep -Eq "^timeline: $WORK/a.json: steps 3–5 of 2 rank\(s\), clocks aligned to rank 0 within [0-9.]+ µs" "$WORK/a.out" \
    || { show stdout "$WORK/a.out"; fail "(a) no timeline line with the alignment error"; }
check_trace "$WORK/a.json" 2 >"$WORK/a.hosts" || fail "(a) the trace does not pass its checks"
pass "(a) 2 ranks, steps 3-5, every bucket after its layers' backward: $(grep -o 'within [0-9.]* µs' "$WORK/a.out")"

# (c)
rc=0
"$DCNET_BIN" train --data "$WORK/data" --timeline "$WORK/c.json" --timeline-steps 5:3 >"$WORK/c.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] && grep -q "timeline-steps must be A:B.*'5:3'" "$WORK/c.out" \
    || { show output "$WORK/c.out"; fail "(c) --timeline-steps 5:3 was not refused clearly"; }
pass "(c) --timeline-steps 5:3 refused"

# (b)
if [[ $(id -u) -ne 0 ]] || ! ip netns add "dcnet-probe-$$" 2>/dev/null; then
    echo "timeline.sh: (b) SKIPPED: needs root and network namespaces"
    exit 0
fi
ip netns delete "dcnet-probe-$$"
SIM=$DCNET_ROOT/scripts/cluster-sim
trap '"$SIM" down >/dev/null 2>&1 || true; cleanup' EXIT
"$SIM" up 2 >/dev/null || fail "(b) cluster-sim up 2 failed"
timeout --kill-after=10 300 "$SIM" run 2 "$DCNET_BIN" "${train[@]}" --checkpoint-dir "$WORK/ckpt-b" \
    --timeline "$WORK/b.json" >"$WORK/b.out" 2>"$WORK/b.err" || { show stderr "$WORK/b.err"; fail "(b) the run failed"; }
check_trace "$WORK/b.json" 2 >"$WORK/b.hosts" || fail "(b) the trace does not pass its checks"
mapfile -t hosts < "$WORK/b.hosts"
[[ ${hosts[0]} != "${hosts[1]}" && ${hosts[0]} == "rank 0 ("*")" && ${hosts[1]} == "rank 1 ("*")" ]] \
    || fail "(b) the tracks are not named after two hosts: ${hosts[*]}"
pass "(b) 2 namespace hosts: tracks ${hosts[0]} and ${hosts[1]}"
