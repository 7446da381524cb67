#!/usr/bin/env bash
# A stalled rank (SIGSTOP: what a hung filesystem read or a frozen node looks like) ends the job
# within --collective-timeout + 30 s, non-zero, with a message naming the rank that did not arrive;
# mpirun and every rank are gone afterwards. Single host, 3 ranks.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

make_data "$WORK/data" 40 8
timeout_s=10
rc_file=$WORK/rc

# launch N ARGS...: dcnet-dist ARGS under mpirun with N ranks in the background (a hang becomes exit
# 124 after 300 s); stdout and stderr to $WORK/out and $WORK/err, the exit status to $rc_file when done.
launch() {
    local n=$1
    shift
    rm -f "$rc_file"
    (
        rc=0
        timeout --kill-after=10 300 bash -c "mpi_run $n \"\$@\"" mpi_run "$DCNET_BIN" "$@" \
            >"$WORK/out" 2>"$WORK/err" || rc=$?
        echo $rc >"$rc_file"
    ) &
    launcher=$!
}
# stop_until_the_job_ends PID: stops PID, waits for the job, sets rc and elapsed (seconds since the stop).
stop_until_the_job_ends() {
    kill -STOP "$1"
    local stopped_at=$SECONDS
    wait "$launcher"
    elapsed=$((SECONDS - stopped_at))
    rc=$(cat "$rc_file")
    kill -CONT "$1" 2>/dev/null || true
}
# wait_for_step S: until training prints step S (or the job ends); fails if it never does.
wait_for_step() {
    for _ in $(seq 600); do
        grep -q "^step *$1 " "$WORK/out" 2>/dev/null && break
        [[ -f $rc_file ]] && break
        sleep 0.2
    done
    grep -q "^step *$1 " "$WORK/out" \
        || { show stdout "$WORK/out"; show stderr "$WORK/err"; fail "training did not reach step $1"; }
}

launch 3 train --data "$WORK/data" --batch-size 6 --epochs 50 --collective-timeout $timeout_s "${SMALL[@]}"

# rank_pid R: the pid of rank R of this job (its environment names its rank).
rank_pid() {
    local p
    for p in $(pgrep -f "dcnet-dist train --data $WORK/data" || true); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

wait_for_step 5
victim=$(rank_pid 1) || fail "no process for rank 1"
stop_until_the_job_ends "$victim"

[[ $rc -ne 0 ]] || { show stderr "$WORK/err"; fail "the job exited 0 after a rank stopped"; }
[[ $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/err"; fail "the job hung (killed by timeout after 300 s)"; }
((elapsed <= timeout_s + 30)) || fail "the job took ${elapsed}s to end (limit ${timeout_s}+30 s)"
grep -q "collective timeout: waited" "$WORK/err" || { show stderr "$WORK/err"; fail "no collective-timeout message"; }
grep -q "ranks that have not arrived (or cannot be reached): rank 1 (" "$WORK/err" \
    || { show stderr "$WORK/err"; fail "the message does not name rank 1 as the one missing"; }
sleep 1
left=$(pgrep -f "dcnet-dist train --data $WORK/data" || true)
[[ -z $left ]] || { ps -o pid,stat,args -p $left; fail "processes left after the job ended"; }
pass "rank 1 stopped: job ended in ${elapsed}s with exit $rc: $(grep -m1 'have not arrived' "$WORK/err")"

# The whole job paused and continued (an operator's SIGSTOP/SIGCONT of every rank, e.g. to take a
# benchmark on a shared machine) for longer than the timeout: the time the ranks themselves were
# stopped does not count against the deadline, and the job finishes normally.
rm -f "$WORK/out" "$WORK/err"
launch 2 train --data "$WORK/data" --batch-size 6 --epochs 4 --collective-timeout $timeout_s "${SMALL[@]}"
wait_for_step 5
ranks=$(pgrep -f "^$DCNET_BIN train --data $WORK/data" || true)
[[ -n $ranks ]] || fail "no rank processes found"
# shellcheck disable=SC2086
kill -STOP $ranks
sleep $((2 * timeout_s + 5))
# shellcheck disable=SC2086
kill -CONT $ranks
wait "$launcher"
rc=$(cat "$rc_file")
[[ $rc -eq 0 ]] || { show stdout "$WORK/out"; show stderr "$WORK/err"; fail "the paused job exited $rc after SIGCONT"; }
grep -q "collective timeout" "$WORK/err" && { show stderr "$WORK/err"; fail "a timeout was reported for a paused job"; }
grep -q "epoch 4" "$WORK/out" || { show stdout "$WORK/out"; fail "the paused job did not finish its 4 epochs"; }
pass "every rank paused $((2 * timeout_s + 5)) s (timeout ${timeout_s} s) and continued: the job finished, exit 0"

# The same for the commands that run over a checkpoint: `attack` with a stopped rank ends within
# the timeout, naming it (they hung before: no watchdog outside training).
"$DCNET_BIN" train --data "$WORK/data" --batch-size 8 --epochs 1 "${SMALL[@]}" \
    --checkpoint-dir "$WORK/ckpt" >"$WORK/train.out" 2>&1 || { show output "$WORK/train.out"; fail "training failed"; }
launch 2 attack --checkpoint "$WORK/ckpt" --data "$WORK/data" --method bim --steps 300 --epsilon 1 \
    --batch-size 4 --threads 1 --collective-timeout $timeout_s
# Stop rank 1 once it has computed for a second (start-up, MPI_Init included, is long over; MPI_Init
# itself is outside any watchdog). Rank 0 finishes its 300 BIM steps (seconds to half a minute) and
# then waits at the final reduction for a rank that never comes.
victim=""
for _ in $(seq 600); do
    [[ -f $rc_file ]] && break
    victim=$(pgrep -f "^$DCNET_BIN attack" | while read -r p; do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && echo "$p"; done | head -1 \
        || true)
    if [[ -n $victim ]]; then
        ticks=$(awk '{print $14 + $15}' "/proc/$victim/stat" 2>/dev/null || echo 0)
        ((ticks >= $(getconf CLK_TCK))) && break
    fi
    sleep 0.2
done
[[ -n $victim && ! -f $rc_file ]] || { show stderr "$WORK/err"; fail "attack rank 1 was not found running"; }
stop_until_the_job_ends "$victim"
[[ $rc -ne 0 && $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/err"; fail "attack with a stopped rank: exit $rc"; }
((elapsed <= 150)) || fail "the attack job took ${elapsed}s to end (limit: rank 0's attack + ${timeout_s} s + margin = 150 s)"
grep -q "ranks that have not arrived (or cannot be reached): rank 1 (" "$WORK/err" \
    || { show stderr "$WORK/err"; fail "the attack job's message does not name rank 1"; }
sleep 1
left=$(pgrep -f "^$DCNET_BIN attack" || true)
[[ -z $left ]] || { ps -o pid,stat,args -p $left; fail "attack processes left after the job ended"; }
pass "attack, rank 1 stopped: job ended in ${elapsed}s with exit $rc"
