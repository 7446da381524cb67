#!/usr/bin/env bash
# Sweeps as Slurm job arrays (scripts/sweep, cluster/sweep.sbatch) on a real Slurm 22.05
# (scripts/slurm-sim) of 2 simulated nodes, one CPU each, one 1-rank run per array task:
#   0. bad input (an unknown --vary key, an empty value list, a missing recipe, a value train
#      rejects) stops scripts/sweep with exit 2 and a message naming it; nothing is submitted and
#      no sweep directory is made
#   1. lr x operator over recipes/reference-sgd.toml: a 4-task array and the report job after it;
#      each run in its own directory named after its values
#   2. one running task is preempted (scancel --batch --signal=USR1 ARRAY_TASK, the signal
#      --signal=B:USR1@N sends at a time limit): it checkpoints and requeues only itself while the
#      other running task trains on; the requeued task resumes and its final parameters (param/
#      tensors of the last checkpoint) and losses are bit-identical to an uninterrupted run of the
#      same configuration
#   3. the node of the other task crashes (every process on it killed, slurmd included): Slurm
#      sets the node DOWN, requeues the task, and it resumes from its last checkpoint elsewhere
#   4. the report job starts after every task has ended and reports all 4 runs
# Needs root and network namespaces; without them it says so and skips (exit 0).
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# A cluster of its own: namespaces dcsweep-*, hosts dcsweep1, dcsweep2.
CLUSTER_SIM_PREFIX=${CLUSTER_SIM_PREFIX:-dcsweep}
source "$(dirname "${BASH_SOURCE[0]}")/slurm-common.bash"
require_namespaces "to create network namespaces and run Slurm's daemons"
# A crashed node is DOWN (and its task requeued) SlurmdTimeout seconds after its last answer.
export SLURM_SIM_SLURMD_TIMEOUT=${SLURM_SIM_SLURMD_TIMEOUT:-10}
started=$SECONDS
start_slurm_sim sweep.sh

make_data "$WORK/data" 20 8
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
RECIPE=$DCNET_ROOT/recipes/reference-sgd.toml
# 100 images, batch 10: 10 steps an epoch, 80 steps, evaluated after every epoch (the report needs
# epochs); a checkpoint every 5 steps.
STEPS=80
TRAIN="--width 0.0625 --threads 1 --eval-every 1 --eval-limit 8 --log-every 1 --no-augment --batch-size 10 --epochs 8"
SBATCH=(--nodes=1 --ntasks-per-node=1 --cpus-per-task=1 --time=10)
SWEEP=$WORK/sweep

sweep() { sx "$DCNET_ROOT/scripts/sweep" --dcnet "$DCNET_BIN" --data "$WORK/data" --checkpoint-every 5 "$@"; }

# ---- 0. bad input: a clear error, exit 2, nothing submitted -------------------------------------
# refused EXPECTED_MESSAGE SWEEP_ARGS...: scripts/sweep exits 2 saying so, before submitting.
refused() {
    local expected=$1 rc=0
    shift
    sweep --sweep-dir "$WORK/bad" "$@" -- "${SBATCH[@]}" >"$WORK/bad.out" 2>&1 || rc=$?
    [[ $rc -eq 2 ]] || { show output "$WORK/bad.out"; fail "(0) scripts/sweep $* exited $rc, expected 2"; }
    grep -qF -- "$expected" "$WORK/bad.out" || { show output "$WORK/bad.out"; fail "(0) scripts/sweep $*: no '$expected'"; }
    [[ ! -e $WORK/bad ]] || fail "(0) scripts/sweep $*: made the sweep directory"
    [[ -z $(sx squeue -h -o %i) ]] || fail "(0) scripts/sweep $*: submitted $(sx squeue -h -o %i)"
}
refused "--vary nosuch: 'nosuch' is not a flag of dcnet-dist train" --recipe "$RECIPE" --vary lr=0.01 --vary nosuch=1,2
refused "--vary lr: empty value list" --recipe "$RECIPE" --vary lr= --vary operator=tanh
refused "--recipe $WORK/none.toml: no such file" --recipe "$WORK/none.toml" --vary lr=0.01,0.02
refused "run operator=bogus (task 1)" --recipe "$RECIPE" --vary operator=tanh,bogus --train-args "$TRAIN"
pass "(0) unknown key, empty value list, missing recipe and a value train rejects: exit 2 naming it, nothing submitted"

# ---- 1. the sweep: 4 tasks and the report after them --------------------------------------------
t0=$SECONDS
sweep --recipe "$RECIPE" --sweep-dir "$SWEEP" --vary lr=0.02,0.05 --vary operator=tanh,baseline \
    --train-args "$TRAIN" -- "${SBATCH[@]}" >"$WORK/submit.out" 2>&1 ||
    { show output "$WORK/submit.out"; fail "(1) scripts/sweep failed"; }
IFS=$'\t' read -r _ ARRAY REPORT <"$SWEEP/jobs.tsv"
mapfile -t RUNS < <(cut -f2 "$SWEEP/sweep.tsv")
[[ ${RUNS[*]} == "lr=0.02_operator=tanh lr=0.02_operator=baseline lr=0.05_operator=tanh lr=0.05_operator=baseline" ]] ||
    fail "(1) run names: ${RUNS[*]}"
log() { echo "$SWEEP/logs/task-$1.out"; }

# task_failed T MESSAGE: the task's output and Slurm's view of it, then FAIL.
task_failed() {
    show "task $1 output" "$(log "$1")" || true
    sx scontrol show job "${ARRAY}_$1" 2>&1 | sed 's/^/    /' || true
    sx squeue -o '%i %j %T %r %N' 2>&1 | sed 's/^/    /' || true
    fail "$2"
}

# step_of T: the last step task T's output shows (0 before the first).
step_of() { sed -n 's/^step *\([0-9]*\) .*/\1/p' "$(log "$1")" 2>/dev/null | tail -1 | grep . || echo 0; }

# wait_for_step T N: until task T's output shows step N.
wait_for_step() {
    local i
    for ((i = 0; i < 600; i++)); do
        (($(step_of "$1") >= $2)) && return 0
        sleep 0.2
    done
    task_failed "$1" "task $1 did not reach step $2"
}

# The first two tasks take both nodes.
wait_for_step 0 12
wait_for_step 1 12
if [[ $(field "${ARRAY}_0" NodeList) == "${PREFIX}2" ]]; then CRASHED=0 PREEMPTED=1; else CRASHED=1 PREEMPTED=0; fi
[[ $(field "${ARRAY}_$CRASHED" NodeList) == "${PREFIX}2" ]] || task_failed "$CRASHED" "tasks 0 and 1 are not on both nodes"

# ---- 2. preemption of one task ------------------------------------------------------------------
# Slurm 22.05 delivers the signal, but while tasks of the array are pending it answers "Job can not
# be altered now", and scancel sends it again every 5-15 s for ~80 s: stop scancel before a repeat
# could reach the requeued run (see cluster/README.md, "Sweeps").
timeout 3 "$SLURM_SIM" exec scancel --batch --signal=USR1 "${ARRAY}_$PREEMPTED" 2>/dev/null || true
wait_state "${ARRAY}_$PREEMPTED" 60 PENDING || task_failed "$PREEMPTED" "(2) the preempted task was not requeued"
[[ $(field "${ARRAY}_$CRASHED" JobState) == RUNNING ]] || task_failed "$CRASHED" "(2) task $CRASHED stopped with the preempted task"
at=$(step_of "$CRASHED")
wait_for_step "$CRASHED" $((at + 2))
(($(step_of "$CRASHED") < STEPS - 10)) || task_failed "$CRASHED" "(3) task $CRASHED is too near its end to crash its node (the steps are too fast)"
stop=$(sed -n 's/^stop requested (SIGUSR1): checkpointing at step \([0-9]*\)$/\1/p' "$(log "$PREEMPTED")" | head -1)
[[ -n $stop ]] || task_failed "$PREEMPTED" "(2) no 'stop requested' line"
grep -q "requeueing job ${ARRAY}_$PREEMPTED\$" "$(log "$PREEMPTED")" || task_failed "$PREEMPTED" "(2) the task did not requeue itself as ${ARRAY}_$PREEMPTED"

# ---- 3. the other task's node crashes -----------------------------------------------------------
mapfile -t node2 < <("$SIM" pids 2)
kill -KILL "${node2[@]}" 2>/dev/null || true
crashed_at=$SECONDS
CRASHED_DIR=$SWEEP/${RUNS[CRASHED]}
last=$(find "$CRASHED_DIR/checkpoints" -name 'ckpt-*.safetensors' | sort | tail -1)
[[ -n $last ]] || fail "(3) no checkpoint of task $CRASHED before the crash"
# Slurm requeues the task when it declares the node DOWN (SlurmdTimeout without an answer).
for ((i = 0; i < 180; i++)); do
    (($(field "${ARRAY}_$CRASHED" Restarts) >= 1)) && break
    sleep 0.5
done
(($(field "${ARRAY}_$CRASHED" Restarts) >= 1)) || task_failed "$CRASHED" "(3) the crashed task was not requeued within 90 s"
down_after=$((SECONDS - crashed_at))
node2_state=$(sx sinfo -h -n "${PREFIX}2" -o '%t')
[[ $node2_state == down* ]] || task_failed "$CRASHED" "(3) the task was requeued but node ${PREFIX}2 is $node2_state, not down"
"$SLURM_SIM" slurmd 2 start

# Until every task has ended; a requeued task is let start as soon as its previous run is gone.
for ((i = 0; i < 1200; i++)); do
    ended=0
    for ((t = 0; t < 4; t++)); do
        case $(field "${ARRAY}_$t" JobState) in
            COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) ended=$((ended + 1)) ;;
            PENDING) release "$(field "${ARRAY}_$t" JobId)" ;;
        esac
    done
    ((ended == 4)) && break
    sleep 0.5
done
for ((t = 0; t < 4; t++)); do
    [[ $(field "${ARRAY}_$t" JobState) == COMPLETED ]] || task_failed "$t" "(1) task $t ended $(field "${ARRAY}_$t" JobState)"
    [[ -f $SWEEP/${RUNS[t]}/checkpoints/$(printf 'ckpt-%08d.safetensors' "$STEPS") ]] || task_failed "$t" "(1) task $t: no final checkpoint"
done
for t in 0 1 2 3; do
    restarts=$(field "${ARRAY}_$t" Restarts)
    if [[ $t == "$PREEMPTED" || $t == "$CRASHED" ]]; then
        ((restarts >= 1)) || task_failed "$t" "task $t was not restarted"
    else
        ((restarts == 0)) || task_failed "$t" "(2) task $t was restarted ($restarts) with the others"
    fi
done
pass "(1) 4 tasks COMPLETED, each in its run directory: ${RUNS[*]} ($((SECONDS - t0)) s)"

# Bit-exact against an uninterrupted run of the same configuration (1 rank, outside Slurm).
# param_bytes CHECKPOINT: a digest of every param/ tensor's name, dtype, shape and bytes.
param_bytes() {
    python3 - "$1" <<'PY'
import hashlib, json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
digest = hashlib.sha256()
params = sorted(k for k in header if k.startswith("param/"))
assert params, "no param/ tensors"
for name in params:
    t = header[name]
    a, b = t["data_offsets"]
    digest.update(f"{name} {t['dtype']} {t['shape']}\n".encode() + data[8 + n + a:8 + n + b])
print(len(params), digest.hexdigest())
PY
}
# reference T: trains task T's configuration once, uninterrupted, into $WORK/ref-T.
reference() {
    local flags
    read -r -a flags <<<"$(awk -F'\t' -v t="$1" '$1 == t { print $3 }' "$SWEEP/sweep.tsv")"
    "$DCNET_BIN" train --data "$WORK/data" --config "$SWEEP/recipe.toml" --checkpoint-dir "$WORK/ref-$1/checkpoints" \
        --metrics "$WORK/ref-$1/metrics.jsonl" "${flags[@]}" >"$WORK/ref-$1.out" 2>&1 ||
        { show "reference $1" "$WORK/ref-$1.out"; fail "the uninterrupted run of task $1 failed"; }
}
reference "$PREEMPTED" &
ref_pid=$!
reference "$CRASHED"
wait "$ref_pid"
final=$(printf 'checkpoints/ckpt-%08d.safetensors' "$STEPS")
for t in "$PREEMPTED" "$CRASHED"; do
    [[ $(param_bytes "$SWEEP/${RUNS[t]}/$final") == "$(param_bytes "$WORK/ref-$t/$final")" ]] ||
        fail "task $t (${RUNS[t]}): final parameters differ from the uninterrupted run"
    diff <(losses "$WORK/ref-$t/metrics.jsonl") <(losses "$SWEEP/${RUNS[t]}/metrics.jsonl") >"$WORK/diff" ||
        { head "$WORK/diff"; fail "task $t (${RUNS[t]}): losses differ from the uninterrupted run"; }
done
grep -q "resumed from .*$(printf 'ckpt-%08d.safetensors' "$stop")" "$(log "$PREEMPTED")" ||
    task_failed "$PREEMPTED" "(2) the requeued task did not resume from step $stop"
echo "sweep-preempted-task-bit-exact: 1"
pass "(2) task $PREEMPTED (${RUNS[PREEMPTED]}) preempted at step $stop, requeued alone while task $CRASHED trained on, resumed from step $stop: final param/ tensors and losses bit-identical to an uninterrupted run"

grep -q "resumed from $last" "$(log "$CRASHED")" || task_failed "$CRASHED" "(3) did not resume from $last"
pass "(3) node ${PREFIX}2 crashed under task $CRASHED at step >= $((at + 2)): node $node2_state, task requeued after ${down_after} s, resumed from $(basename "$last") and finished bit-identical to an uninterrupted run"

# ---- 4. the report after the array ---------------------------------------------------------------
wait_state "$REPORT" 120 COMPLETED FAILED CANCELLED || { show report "$SWEEP/logs/report.out"; fail "(4) the report job did not end"; }
[[ $(field "$REPORT" JobState) == COMPLETED ]] || { show report "$SWEEP/logs/report.out"; fail "(4) the report job ended $(field "$REPORT" JobState)"; }
report_start=$(date -d "$(field "$REPORT" StartTime)" +%s)
for ((t = 0; t < 4; t++)); do
    (($(date -d "$(field "${ARRAY}_$t" EndTime)" +%s) <= report_start)) || fail "(4) the report started before task $t ended"
done
for run in "${RUNS[@]}"; do
    grep -qF "$run" "$SWEEP/report.md" || fail "(4) report.md does not name run $run"
done
grep -q "missing" "$SWEEP/logs/report.out" && { show report "$SWEEP/logs/report.out"; fail "(4) the report lists missing runs"; }
pass "(4) the report job ran after the 4 tasks: $SWEEP/report.md with every run"

echo "sweep.sh: all done in $((SECONDS - started)) s"
