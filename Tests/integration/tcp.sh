#!/usr/bin/env bash
# A short 2-rank run over the TCP transport only (what multi-node runs without a fast fabric use).
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

make_data "$WORK/data" 10 8
rc=0
MPI_RUN_EXTRA="${MPI_RUN_EXTRA:-} --mca btl tcp,self --mca pml ob1" \
    timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" train --data "$WORK/data" \
    --batch-size 8 --epochs 1 --max-steps 3 --sync-batchnorm --checkpoint-dir "$WORK/ckpt" "${SMALL[@]}" \
    --metrics "$WORK/metrics.jsonl" \
    >"$WORK/out" 2>"$WORK/err" || rc=$?
[[ $rc -eq 0 ]] || { show stdout "$WORK/out"; show stderr "$WORK/err"; fail "2-rank TCP run exited $rc"; }
grep -q "2 rank(s)" "$WORK/out" || { show stdout "$WORK/out"; fail "not a 2-rank run"; }
grep -q "^step *3 " "$WORK/out" || { show stdout "$WORK/out"; fail "no step 3"; }
grep -q -- "--max-steps 3 reached" "$WORK/out" || { show stdout "$WORK/out"; fail "did not stop at --max-steps"; }
[[ -f $WORK/ckpt/ckpt-00000003.safetensors ]] || fail "no checkpoint at step 3"
# The straggler report: every progress line names the slowest rank and its host.
[[ $(grep -c "^step .* slowest rank [01] (.*) +[0-9.]*%$" "$WORK/out") -eq 3 ]] \
    || { show stdout "$WORK/out"; fail "progress lines do not name the slowest rank"; }
python3 - "$WORK/metrics.jsonl" <<'PY' || fail "metrics progress records lack the straggler fields"
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l).get("kind") == "progress"]
assert len(records) == 3, records
for r in records:
    assert r["slowest_rank"] in (0, 1) and r["slowest_host"] and r["slowest_excess"] >= 0, r
PY
pass "2 ranks over btl tcp,self: 3 steps, a checkpoint, and the slowest rank named in every progress line"
