#!/usr/bin/env bash
# SIGTERM to one rank (not mpirun) of a 2-rank run: every rank stops at the same step, rank 0
# writes a checkpoint, the job exits 0, and --resume continues from that checkpoint.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

make_data "$WORK/data" 40 8
ckpt="$WORK/ckpt-sigterm-$$"
args=(train --data "$WORK/data" --batch-size 8 --epochs 1000 --checkpoint-dir "$ckpt" "${SMALL[@]}")

timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${args[@]}" \
    >"$WORK/out" 2>"$WORK/err" &
job=$!

# Wait for the first progress line (both ranks have installed the signal handler by then).
for _ in $(seq 1 600); do
    grep -q '^step ' "$WORK/out" 2>/dev/null && break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.2
done
grep -q '^step ' "$WORK/out" || { show stdout "$WORK/out"; show stderr "$WORK/err"; fail "no progress line"; }

# The rank processes are the ones whose command line starts with the binary (not mpirun, bash, timeout).
mapfile -t ranks < <(pgrep -f "^$DCNET_BIN train .*--checkpoint-dir $ckpt")
[[ ${#ranks[@]} -eq 2 ]] || fail "expected 2 rank processes, found ${#ranks[@]}: ${ranks[*]:-}"
target=${ranks[-1]}
kill -TERM "$target"
echo "sent SIGTERM to rank process $target"

rc=0
wait "$job" || rc=$?
[[ $rc -eq 0 ]] || { show stdout "$WORK/out"; show stderr "$WORK/err"; fail "job exited $rc after SIGTERM (expected 0)"; }
grep -q 'stop requested' "$WORK/out" || { show stdout "$WORK/out"; fail "no 'stop requested' line"; }
shopt -s nullglob
files=("$ckpt"/ckpt-*.safetensors)
[[ ${#files[@]} -eq 1 ]] || fail "expected one checkpoint in $ckpt, found: ${files[*]:-none}"
step=$(basename "${files[0]}" .safetensors); step=$((10#${step#ckpt-}))
[[ $step -ge 1 ]] || fail "checkpoint at step $step"
grep -q "checkpointing at step $step\$" "$WORK/out" || { show stdout "$WORK/out"; fail "checkpoint step $step not announced"; }
pass "stopped at step $step with exit 0 and ${files[0]}"

# Resume: continues from that step.
target_step=$((step + 2))
timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${args[@]}" --resume --max-steps "$target_step" \
    >"$WORK/out2" 2>"$WORK/err2" || { show stdout "$WORK/out2"; show stderr "$WORK/err2"; fail "resume failed"; }
grep -q "resumed from ${files[0]} at epoch [0-9]*, step $step\$" "$WORK/out2" \
    || { show stdout "$WORK/out2"; fail "resume did not start from ${files[0]} at step $step"; }
grep -q "^step *$((step + 1)) " "$WORK/out2" || { show stdout "$WORK/out2"; fail "no step $((step + 1)) after resuming"; }
[[ -f $ckpt/$(printf 'ckpt-%08d.safetensors' "$target_step") ]] || fail "no checkpoint at step $target_step after resuming"
pass "resumed from step $step and reached step $target_step"
