#!/usr/bin/env bash
# Failures on one rank end the whole job quickly, non-zero, with a message naming the rank and cause:
#   (a) a truncated data file on rank 1 only (MPMD: each rank gets its own --data)
#   (b) a diverging rank 1 (--lr 1e30 on rank 1 only) → non-finite loss/gradients
#   (c) a checkpoint truncated on disk is skipped on --resume, which falls back to the older one.
#   (d) a configuration problem on rank 1 only (MPMD) is agreed: every rank stops at once, exit 1.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

make_data "$WORK/good" 20 8
cp -r "$WORK/good" "$WORK/bad"
truncate -s -100 "$WORK/bad/data_batch_2.bin"
common=(train --batch-size 8 --epochs 2 --max-steps 6 "${SMALL[@]}")

# (a) bad data on rank 1 only. timeout turns a hang into a failure.
rc=0
timeout --kill-after=10 120 mpirun "${MPI_FLAGS[@]}" \
    -np 1 "$DCNET_BIN" "${common[@]}" --data "$WORK/good" : \
    -np 1 "$DCNET_BIN" "${common[@]}" --data "$WORK/bad" >"$WORK/a.out" 2>"$WORK/a.err" || rc=$?
[[ $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/a.err"; fail "(a) bad data on rank 1: the job hung (timeout)"; }
[[ $rc -ne 0 ]] || fail "(a) bad data on rank 1: exit 0"
grep -q "rank 1" "$WORK/a.err" || { show stderr "$WORK/a.err"; fail "(a) the error does not name rank 1"; }
grep -q "$WORK/bad/data_batch_2.bin" "$WORK/a.err" || { show stderr "$WORK/a.err"; fail "(a) the error does not name the truncated file"; }
grep -q "data_batch_2.bin.*not a whole number" "$WORK/a.err" || { show stderr "$WORK/a.err"; fail "(a) the error does not say what is wrong"; }
pass "(a) bad data on rank 1: exit $rc, names rank 1 and $WORK/bad/data_batch_2.bin"

# (b) rank 1 diverges.
rc=0
timeout --kill-after=10 120 mpirun "${MPI_FLAGS[@]}" \
    -np 1 "$DCNET_BIN" "${common[@]}" --data "$WORK/good" : \
    -np 1 "$DCNET_BIN" "${common[@]}" --data "$WORK/good" --lr 1e30 >"$WORK/b.out" 2>"$WORK/b.err" || rc=$?
[[ $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/b.err"; fail "(b) lr 1e30 on rank 1: the job hung (timeout)"; }
[[ $rc -ne 0 ]] || { show stdout "$WORK/b.out"; fail "(b) lr 1e30 on rank 1: exit 0"; }
grep -Eq "rank 1: .*(not finite|non-finite)" "$WORK/b.err" \
    || { show stderr "$WORK/b.err"; fail "(b) the error does not say non-finite on rank 1"; }
pass "(b) lr 1e30 on rank 1: exit $rc: $(grep -E 'not finite|non-finite' "$WORK/b.err" | head -1)"

# (c) the newest checkpoint is truncated on disk: --resume skips it (saying so) and uses the older one.
ckpt="$WORK/ckpt"
timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${common[@]}" --data "$WORK/good" \
    --checkpoint-dir "$ckpt" --checkpoint-every 2 --max-steps 4 >"$WORK/c1.out" 2>"$WORK/c1.err" \
    || { show stderr "$WORK/c1.err"; fail "(c) the first run failed"; }
older=$ckpt/ckpt-00000002.safetensors newest=$ckpt/ckpt-00000004.safetensors
[[ -f $older && -f $newest ]] || fail "(c) expected checkpoints at steps 2 and 4: $(ls "$ckpt")"
truncate -s "$(($(stat -c %s "$newest") / 2))" "$newest"
timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${common[@]}" --data "$WORK/good" \
    --checkpoint-dir "$ckpt" --resume --max-steps 5 >"$WORK/c2.out" 2>"$WORK/c2.err" \
    || { show stdout "$WORK/c2.out"; show stderr "$WORK/c2.err"; fail "(c) resuming past a truncated checkpoint failed"; }
grep -q "skipping damaged checkpoint $newest" "$WORK/c2.err" \
    || { show stderr "$WORK/c2.err"; fail "(c) no message about skipping $newest"; }
grep -q "resumed from $older at epoch [0-9]*, step 2\$" "$WORK/c2.out" \
    || { show stdout "$WORK/c2.out"; fail "(c) did not resume from $older"; }
grep -q "^step *3 " "$WORK/c2.out" || { show stdout "$WORK/c2.out"; fail "(c) training did not continue at step 3"; }
pass "(c) skipped the truncated $newest and resumed from step 2"

# (d) a configuration problem only rank 1 sees (MPMD: rank 1's --batch-size 9 does not divide by the 2
# ranks): every rank stops at once with the reason, instead of rank 0 waiting in the next collective
# until the watchdog's deadline (300 s; the timeout below is shorter, so a wait fails the test).
rc=0
start=$SECONDS
timeout --kill-after=10 120 mpirun "${MPI_FLAGS[@]}" \
    -np 1 "$DCNET_BIN" "${common[@]}" --data "$WORK/good" : \
    -np 1 "$DCNET_BIN" "${common[@]}" --data "$WORK/good" --batch-size 9 >"$WORK/d.out" 2>"$WORK/d.err" || rc=$?
elapsed=$((SECONDS - start))
[[ $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/d.err"; fail "(d) a problem on rank 1 only: the job hung (timeout)"; }
[[ $rc -eq 1 ]] || { show stderr "$WORK/d.err"; fail "(d) a problem on rank 1 only: exit $rc (expected 1, agreed)"; }
grep -q "error: checking the configuration failed on rank 1: .*--batch-size 9 is the global batch and must divide by the 2 ranks" \
    "$WORK/d.err" || { show stderr "$WORK/d.err"; fail "(d) the agreed error does not name rank 1 and its reason"; }
grep -q "failed on rank 0\|failed on ranks" "$WORK/d.err" && { show stderr "$WORK/d.err"; fail "(d) rank 0 is blamed too"; }
grep -q "collective timeout" "$WORK/d.err" && { show stderr "$WORK/d.err"; fail "(d) ended by the watchdog, not agreed"; }
pass "(d) --batch-size 9 on rank 1 only: every rank stopped in ${elapsed}s with exit 1, naming rank 1 and the flag"

# (e) a bad recipe (`train --config FILE`) under 3 ranks: each rank refuses it before MPI and before
# any data is read (exit 64), so mpirun ends the job non-zero at the first such exit (the other ranks
# may be stopped by it before they print), with the file, the key and the value named; no hang.
printf 'lr = "fast"\nepochz = 3\n' >"$WORK/bad.toml"
rc=0
timeout --kill-after=10 120 bash -c 'mpi_run 3 "$@"' mpi_run "$DCNET_BIN" train --config "$WORK/bad.toml" \
    --data "$WORK/good" >"$WORK/e.out" 2>"$WORK/e.err" || rc=$?
[[ $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/e.err"; fail "(e) a bad recipe: the job hung (timeout)"; }
[[ $rc -ne 0 ]] || fail "(e) a bad recipe: exit 0"
for needle in "$WORK/bad.toml: key 'lr' = \"fast\"" "$WORK/bad.toml: unknown key 'epochz'"; do
    grep -qF "$needle" "$WORK/e.err" || { show stderr "$WORK/e.err"; fail "(e) the error does not say: $needle"; }
done
grep -q "Exit code: *64" "$WORK/e.err" || { show stderr "$WORK/e.err"; fail "(e) no rank exited with the usage error 64"; }
pass "(e) a bad recipe under 3 ranks: exit $rc, naming $WORK/bad.toml, its keys and values"
