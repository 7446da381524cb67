#!/usr/bin/env bash
# Stop signals under mpirun -np 2, each sent to one rank process (not mpirun):
#   SIGTERM or SIGINT mid-training: every rank stops at the same step, rank 0 writes a checkpoint,
#     the job exits 0, and --resume continues from that checkpoint;
#   SIGTERM during data loading: the job ends with exit 0 and a message, no step and no checkpoint;
#   a second SIGINT: the rank exits at once (status 130), without waiting for the run to stop.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

make_data "$WORK/data" 40 8
# Big enough that reading it takes a while, so a rank can be caught (and frozen) inside the loading.
make_data "$WORK/big" 10000 8
big_bytes=$(cat "$WORK"/big/*.bin | wc -c)

# start NAME ARGS...: a 2-rank training job in the background ($job), output in $WORK/NAME.out/.err,
# checkpoints in $WORK/ckpt-NAME; sets $ckpt and, once both exist, the rank pids in $ranks.
start() {
    local name=$1
    shift
    ckpt="$WORK/ckpt-$name"
    out="$WORK/$name.out" err="$WORK/$name.err"
    timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" train --checkpoint-dir "$ckpt" "$@" \
        >"$out" 2>"$err" &
    job=$!
    # The rank processes are the ones whose command line starts with the binary (not mpirun, bash, timeout).
    for _ in $(seq 1 600); do
        mapfile -t ranks < <(pgrep -f "^$DCNET_BIN train --checkpoint-dir $ckpt ")
        [[ ${#ranks[@]} -eq 2 ]] && return
        kill -0 "$job" 2>/dev/null || break
        sleep 0.1
    done
    show stdout "$out"; show stderr "$err"
    fail "$name: expected 2 rank processes, found ${#ranks[@]}: ${ranks[*]:-}"
}

# finish_job: waits for the job; its exit status in $rc.
finish_job() { rc=0; wait "$job" || rc=$?; }

# bytes_read PID: bytes the process has read so far (0 once it is gone).
bytes_read() { awk '/^rchar/ {print $2}' "/proc/$1/io" 2>/dev/null || echo 0; }

# wait_reading PID: returns once the process has started reading the big data set (8 MB in).
wait_reading() {
    for _ in $(seq 1 3000); do
        [[ $(bytes_read "$1") -ge 8000000 ]] && return
        [[ -d /proc/$1 ]] || break
        sleep 0.02
    done
    show stdout "$out"; show stderr "$err"
    fail "rank process $1 never started reading the data"
}

# alive PID: the process exists and is not a zombie waiting for mpirun to reap it.
# The state is read once: a process reaped between two reads of /proc would otherwise look alive.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# freeze_one_loading: stops ranks[0] while it reads the data (before it can reach the first
# collective after loading), so ranks[1] cannot start training whenever it is signalled.
freeze_one_loading() {
    wait_reading "${ranks[0]}"
    kill -STOP "${ranks[0]}"
    local read
    read=$(bytes_read "${ranks[0]}")
    [[ $read -lt $big_bytes ]] || echo "note: rank process ${ranks[0]} had read all $read bytes when stopped"
}

# mid_training SIGNAL: the signal mid-training ends the run with a checkpoint and exit 0; sets $step.
mid_training() {
    local sig=$1
    start "$sig" --data "$WORK/data" --batch-size 8 --epochs 1000 "${SMALL[@]}"
    # Wait for the first progress line (both ranks are training by then).
    for _ in $(seq 1 600); do
        grep -q '^step ' "$out" 2>/dev/null && break
        kill -0 "$job" 2>/dev/null || break
        sleep 0.2
    done
    grep -q '^step ' "$out" || { show stdout "$out"; show stderr "$err"; fail "$sig: no progress line"; }
    kill "-$sig" "${ranks[-1]}"
    echo "sent SIG$sig to rank process ${ranks[-1]}"
    finish_job
    [[ $rc -eq 0 ]] || { show stdout "$out"; show stderr "$err"; fail "job exited $rc after SIG$sig (expected 0)"; }
    grep -q "stop requested (SIG$sig)" "$out" || { show stdout "$out"; fail "no 'stop requested (SIG$sig)' line"; }
    shopt -s nullglob
    files=("$ckpt"/ckpt-*.safetensors)
    shopt -u nullglob
    [[ ${#files[@]} -eq 1 ]] || fail "SIG$sig: expected one checkpoint in $ckpt, found: ${files[*]:-none}"
    step=$(ckpt_step "${files[0]}")
    [[ $step -ge 1 ]] || fail "SIG$sig: checkpoint at step $step"
    grep -q "checkpointing at step $step\$" "$out" \
        || { show stdout "$out"; fail "checkpoint step $step not announced"; }
    pass "SIG$sig: stopped at step $step with exit 0 and ${files[0]}"
}

mid_training INT

mid_training TERM
# Resume: continues from that step.
target_step=$((step + 2))
timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" train --checkpoint-dir "$ckpt" \
    --data "$WORK/data" --batch-size 8 --epochs 1000 "${SMALL[@]}" --resume --max-steps "$target_step" \
    >"$WORK/out2" 2>"$WORK/err2" || { show stdout "$WORK/out2"; show stderr "$WORK/err2"; fail "resume failed"; }
grep -q "resumed from ${files[0]} at epoch [0-9]*, step $step\$" "$WORK/out2" \
    || { show stdout "$WORK/out2"; fail "resume did not start from ${files[0]} at step $step"; }
grep -q "^step *$((step + 1)) " "$WORK/out2" \
    || { show stdout "$WORK/out2"; fail "no step $((step + 1)) after resuming"; }
[[ -f $ckpt/$(printf 'ckpt-%08d.safetensors' "$target_step") ]] \
    || fail "no checkpoint at step $target_step after resuming"
pass "resumed from step $step and reached step $target_step"

# SIGTERM while loading: one rank is frozen inside its loading, the other is signalled as it reads.
start loading --data "$WORK/big" --batch-size 8 --epochs 1000 "${SMALL[@]}"
freeze_one_loading
wait_reading "${ranks[1]}"
kill -TERM "${ranks[1]}"
echo "sent SIGTERM to rank process ${ranks[1]} while it read the data"
sleep 1
kill -CONT "${ranks[0]}"
finish_job
[[ $rc -eq 0 ]] \
    || { show stdout "$out"; show stderr "$err"; fail "job exited $rc after SIGTERM while loading (expected 0)"; }
grep -q '^stopped by SIGTERM before training started$' "$out" \
    || { show stdout "$out"; show stderr "$err"; fail "no 'stopped by SIGTERM before training started' line"; }
! grep -q '^step ' "$out" || { show stdout "$out"; fail "a step was taken after SIGTERM while loading"; }
[[ ! -e $ckpt ]] || fail "a checkpoint directory was written without a step: $(ls "$ckpt")"
pass "SIGTERM while loading: exit 0, no step, no checkpoint"

# A second SIGINT ends the rank at once, although a clean stop is pending.
start twice --data "$WORK/big" --batch-size 8 --epochs 1000 "${SMALL[@]}"
freeze_one_loading
target=${ranks[1]}
wait_reading "$target"
kill -INT "$target"
sleep 0.5
if ! alive "$target"; then
    kill -CONT "${ranks[0]}"
    show stderr "$err"
    fail "the first SIGINT killed rank process $target"
fi
kill -INT "$target"
start_ns=$(date +%s%N)
for _ in $(seq 1 100); do
    alive "$target" || break
    sleep 0.05
done
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
kill -CONT "${ranks[0]}" 2>/dev/null || true
if alive "$target"; then
    show stderr "$err"
    echo "state of $target: $(cat /proc/"$target"/status 2>/dev/null | grep -E '^(State|SigBlk|SigPnd|ShdPnd)' | tr '\n' ' ')"
    fail "rank process $target still runs 5 s after the second SIGINT"
fi
finish_job
[[ $rc -ne 0 ]] || { show stdout "$out"; fail "job exited 0 after a second SIGINT"; }
grep -q 'second SIGINT: exiting at once' "$err" || { show stderr "$err"; fail "no message about the second SIGINT"; }
pass "second SIGINT: rank gone ${elapsed_ms} ms later, job exited $rc"
