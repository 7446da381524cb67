#!/usr/bin/env bash
# --precision under mpirun with 2 ranks:
#   (a) bf16 with oneDNN unavailable (DCNET_DNNL_LIBRARY names a missing library): every rank stops
#       before training, exit 1, the agreed error naming both ranks, what is missing and what to do;
#       eval likewise.
#   (b) auto with oneDNN unavailable: fp32, saying why.
#   (c) where the CPU has native bf16 and oneDNN loads (else skipped, saying why): a short bf16 run
#       learns (it memorises a small set), records its precision, and a checkpoint it wrote resumes
#       in fp32, saying so.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

make_data "$WORK/data" 4 8
common=(train --data "$WORK/data" --batch-size 10 --epochs 40 "${SMALL[@]}")
missing=libdnnl-missing-for-test.so.2

# (a) bf16 without oneDNN.
rc=0
DCNET_DNNL_LIBRARY=$missing timeout --kill-after=10 120 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" \
    "${common[@]}" --max-steps 3 --precision bf16 >"$WORK/a.out" 2>"$WORK/a.err" || rc=$?
[[ $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/a.err"; fail "(a) the job hung (timeout)"; }
[[ $rc -ne 0 ]] || { show stdout "$WORK/a.out"; fail "(a) --precision bf16 without oneDNN: exit 0"; }
grep -q "error: checking --precision bf16 failed on ranks 0, 1: .*$missing.*apt-get install libdnnl-dev.*--precision fp32" \
    "$WORK/a.err" || { show stderr "$WORK/a.err"; fail "(a) the agreed error does not name both ranks, what is missing and what to do"; }
! grep -q "^step " "$WORK/a.out" || { show stdout "$WORK/a.out"; fail "(a) training started"; }
pass "(a) --precision bf16 without oneDNN: exit $rc on both ranks before training"

# (b) auto without oneDNN: fp32, and why.
DCNET_DNNL_LIBRARY=$missing timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" \
    "${common[@]}" --max-steps 2 --precision auto >"$WORK/b.out" 2>"$WORK/b.err" \
    || { show stderr "$WORK/b.err"; fail "(b) --precision auto without oneDNN failed"; }
grep -Eq "precision auto chose fp32: .*(no native bf16|$missing)" "$WORK/b.out" \
    || { show stdout "$WORK/b.out"; fail "(b) auto does not say it chose fp32 and why"; }
pass "(b) $(grep 'precision auto chose' "$WORK/b.out")"

# (c) a bf16 run that learns, then a resume in fp32.
if ! grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo; then
    echo "$(basename "$0"): (c) SKIPPED: this CPU has neither avx512_bf16 nor amx_bf16 (/proc/cpuinfo)"
    exit 0
fi
if ! ldconfig -p | grep -q 'libdnnl\.so\.2 '; then
    echo "$(basename "$0"): (c) SKIPPED: libdnnl.so.2 is not installed (apt-get install libdnnl-dev)"
    exit 0
fi
ckpt=$WORK/ckpt
timeout --kill-after=10 600 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${common[@]}" --max-steps 40 \
    --lr 0.05 --schedule constant --warmup-epochs 0 --precision bf16 --checkpoint-dir "$ckpt" --metrics "$WORK/metrics.jsonl" \
    >"$WORK/c.out" 2>"$WORK/c.err" || { show stderr "$WORK/c.err"; fail "(c) the bf16 run failed"; }
grep -q "precision bf16 (GEMM operands bf16, fp32 accumulation)" "$WORK/c.out" \
    || { show stdout "$WORK/c.out"; fail "(c) no precision line"; }
grep -q '"precision":"bf16"' "$WORK/metrics.jsonl" || fail "(c) metrics.jsonl does not record the precision"
# The mean loss of the last 4 steps (two epochs of 20 images) against the first 4's.
read -r first last < <(grep '^step ' "$WORK/c.out" | sed -E 's/.*loss ([0-9.]+).*/\1/' | python3 -c '
import sys
v = [float(x) for x in sys.stdin]
print(sum(v[:4]) / 4, sum(v[-4:]) / 4)')
python3 -c "import sys; sys.exit(0 if $last < 0.5 * $first else 1)" \
    || { show stdout "$WORK/c.out"; fail "(c) bf16 did not learn: mean loss $first over the first 4 steps, $last over the last 4"; }
pass "(c) bf16 learns: mean loss $first over the first 4 steps → $last over the last 4"
timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${common[@]}" --max-steps 41 \
    --precision fp32 --checkpoint-dir "$ckpt" --resume >"$WORK/d.out" 2>"$WORK/d.err" \
    || { show stderr "$WORK/d.err"; fail "(c) resuming in fp32 failed"; }
grep -q "resuming a checkpoint trained with bf16 GEMMs in fp32" "$WORK/d.out" \
    || { show stdout "$WORK/d.out"; fail "(c) the resume does not say it switched precision"; }
grep -q "^step *41 " "$WORK/d.out" || { show stdout "$WORK/d.out"; fail "(c) training did not continue at step 41"; }
pass "(c) a bf16 checkpoint resumes in fp32 and says so"

# (d) eval takes --precision too: bf16 evaluates the fp32 checkpoint; without oneDNN every rank stops.
timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" eval --checkpoint "$ckpt" \
    --data "$WORK/data" --threads 1 --precision bf16 >"$WORK/e.out" 2>"$WORK/e.err" \
    || { show stderr "$WORK/e.err"; fail "(d) eval --precision bf16 failed"; }
rc=0
DCNET_DNNL_LIBRARY=$missing timeout --kill-after=10 120 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" eval \
    --checkpoint "$ckpt" --data "$WORK/data" --threads 1 --precision bf16 >"$WORK/f.out" 2>"$WORK/f.err" || rc=$?
[[ $rc -ne 0 && $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/f.err"; fail "(d) eval without oneDNN: exit $rc"; }
grep -q "error: checking --precision bf16 failed on ranks 0, 1: .*apt-get install libdnnl-dev" "$WORK/f.err" \
    || { show stderr "$WORK/f.err"; fail "(d) eval without oneDNN does not say what is missing"; }
pass "(d) eval --precision bf16 runs, and stops on every rank without oneDNN"
