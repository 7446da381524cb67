#!/usr/bin/env bash
# Faults injected (DCNET_FAULT, see Sources/DCNetTraining/FaultInjection.swift) on rank 0, a middle
# rank and the last rank of 3 end the job quickly, non-zero, with a message naming that rank:
#   throw: an error only that rank knows of, with its gradient all-reduces in flight: the job is
#          aborted (no rank finalises, no dropped request is waited for)
#   nan:   that rank's local gradients are NaN; after the all-reduce every rank sees NaN, and the
#          report names the rank where they first appeared, not the highest rank that saw them
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

make_data "$WORK/data" 20 8
common=(train --data "$WORK/data" --batch-size 12 --epochs 2 --max-steps 4 "${SMALL[@]}")
limit=60  # seconds: a start-up plus a few steps of this model take a few seconds

for kind in throw nan; do
    for rank in 0 1 2; do
        name="$kind on rank $rank"
        rc=0 start=$SECONDS
        DCNET_FAULT="rank:$rank,step:2,kind:$kind" MPI_RUN_EXTRA="-x DCNET_FAULT" \
            timeout --kill-after=10 "$limit" bash -c 'mpi_run 3 "$@"' mpi_run "$DCNET_BIN" "${common[@]}" \
            >"$WORK/out" 2>"$WORK/err" || rc=$?
        took=$((SECONDS - start))
        [[ $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/err"; fail "$name: the job hung (over $limit s)"; }
        [[ $rc -ne 0 ]] || { show stdout "$WORK/out"; fail "$name: exit 0"; }
        if [[ $kind == throw ]]; then
            grep -q "error on rank $rank: injected fault" "$WORK/err" \
                || { show stderr "$WORK/err"; fail "$name: the error does not name rank $rank"; }
        else
            grep -q "error: step agreement failed on rank $rank: non-finite gradients at step 2" "$WORK/err" \
                || { show stderr "$WORK/err"; fail "$name: the error does not name rank $rank"; }
            others=$(grep "non-finite" "$WORK/err" | grep -v "failed on rank $rank:" || true)
            [[ -z $others ]] || { show stderr "$WORK/err"; fail "$name: another rank is blamed"; }
        fi
        pass "$name: exit $rc after ${took}s: $(grep -E 'injected|non-finite' "$WORK/err" | head -1)"
    done
done

# A malformed DCNET_FAULT is an error (a fault test must not pass because nothing was injected).
rc=0
DCNET_FAULT="rank:1,kind:throw" timeout --kill-after=10 "$limit" "$DCNET_BIN" "${common[@]}" \
    >"$WORK/out" 2>"$WORK/err" || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || { show stderr "$WORK/err"; fail "malformed DCNET_FAULT: exit $rc"; }
grep -q "DCNET_FAULT=rank:1,kind:throw: expected" "$WORK/err" \
    || { show stderr "$WORK/err"; fail "malformed DCNET_FAULT: no message"; }
pass "malformed DCNET_FAULT: exit $rc"
