#!/usr/bin/env bash
# The cluster scripts under a real scheduler: Slurm 22.05 (Debian's slurm-wlm, scripts/slurm-sim)
# on 2 simulated hosts (scripts/cluster-sim), one CPU and one rank per node, and cluster/pbs.sh
# in a PBS-like environment (no PBS server exists in Debian):
#   1. sbatch cluster/slurm.sbatch (srun --mpi=pmix) and cluster/slurm-mpirun.sbatch (mpirun in
#      the allocation): 2 ranks on 2 nodes, COMPLETED, rank 0's checkpoint and metrics in RUN_DIR
#   2. scancel --signal=USR1 (the job's steps) and scancel --batch --signal=USR1 (the batch shell),
#      for both scripts: the ranks stop at one step, rank 0 checkpoints; the first ends COMPLETED
#      and a resubmission resumes, the second requeues itself and the requeued run resumes
#   3. a time limit (--time=1 --signal=B:USR1@10): the job checkpoints before the limit, requeues
#      itself, and the requeued runs resume and finish with losses bit-identical to an
#      uninterrupted run of the same script (prints slurm-requeue-resume-bit-exact: 1)
#   4. node failure (host 2's link cut mid-run): the ranks end at the trainer's collective timeout
#      (20 s), the job ends within a bound (FAILED, or requeued by Slurm if it declares the node
#      DOWN first), no rank or launcher is left; resubmitted on the
#      remaining node with 1 rank and the same global batch, training resumes from the last
#      checkpoint
#   5. cluster/pbs.sh with PBS_NODEFILE (PBS Pro and Torque layouts), PBS_JOBID, PBS_O_WORKDIR,
#      mpirun reaching host 2 through cluster-sim's rsh agent (PBS would use ssh): 2 ranks on 2
#      hosts; SIGTERM to the job shell (qdel) checkpoints and exits 0; a rerun resumes
# Needs root and network namespaces; without them it says so and skips (exit 0). Installs
# slurm-wlm and munge with apt-get when missing (scripts/slurm-sim up).
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# A cluster of its own: namespaces dcslurm-*, hosts dcslurm1, dcslurm2.
CLUSTER_SIM_PREFIX=${CLUSTER_SIM_PREFIX:-dcslurm}
source "$(dirname "${BASH_SOURCE[0]}")/slurm-common.bash"
require_namespaces "to create network namespaces and run Slurm's daemons"
started=$SECONDS
start_slurm_sim slurm.sh

make_data "$WORK/data" 40 8
# The job's environment (sbatch passes it on): paths, the binary, mpirun as root.
export DATA_DIR=$WORK/data DCNET=$DCNET_BIN OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One rank per node, one CPU per rank: sbatch options override the scripts' #SBATCH lines.
NODES2=(--nodes=2 --ntasks-per-node=1 --cpus-per-task=1)
TINY="${SMALL[*]} --batch-size 8 --epochs 1000"
# A model whose steps take long enough to be interrupted at a chosen point.
MEDIUM="--width 0.25 --threads 1 --eval-every 0 --eval-limit 8 --log-every 1 --no-augment --batch-size 16 --epochs 1000"

# ranks_on_their_hosts FILE: the progress lines' straggler report puts rank 0 on host 1 and rank 1
# on host 2 (which of them is the slowest varies from run to run).
ranks_on_their_hosts() {
    grep -Eq "slowest rank (0 \\(${PREFIX}1\\)|1 \\(${PREFIX}2\\))" "$1" &&
        ! grep -Eq "slowest rank (0 \\(${PREFIX}2\\)|1 \\(${PREFIX}1\\))" "$1"
}

# submit NAME SCRIPT EXTRA_ARGS SBATCH_OPTIONS...: the job id; RUN_DIR=$WORK/NAME, output NAME.out.
submit() {
    local name=$1 script=$2 extra=$3
    shift 3
    RUN_DIR=$WORK/$name DCNET_EXTRA_ARGS=$extra sx sbatch --parsable --job-name="$name" \
        --output="$WORK/$name.out" "$@" "$DCNET_ROOT/cluster/$script"
}

# wait_for_step FILE N JOB: until FILE shows step N (false if the job ended first).
wait_for_step() {
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q "^step *$2 " "$1" 2>/dev/null && return 0
        case $(field "$3" JobState) in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL) return 1 ;; esac
        sleep 0.2
    done
    return 1
}

job_failed() { # NAME JOB MESSAGE
    show "$1 output" "$WORK/$1.out" || true
    sx scontrol show job "$2" 2>&1 | sed 's/^/    /' || true
    echo "--- Slurm's logs about job $2:"
    grep -h -E "JobId=$2([^0-9]|\$)|\\[$2\\.|job $2([^0-9]|\$)" "$LOGS"/slurmctld.log "$LOGS"/slurmd-*.log 2>/dev/null |
        tail -40 | sed 's/^/    /' || true
    fail "$3"
}

# ---- 1. both Slurm scripts train across 2 nodes -------------------------------------------------
for script in slurm.sbatch slurm-mpirun.sbatch; do
    name=basic-${script%%.*}
    t0=$SECONDS
    job=$(submit "$name" "$script" "$TINY --max-steps 6 --checkpoint-every 3" "${NODES2[@]}" --time=5) ||
        fail "(1) sbatch $script failed"
    wait_state "$job" 120 COMPLETED FAILED CANCELLED || job_failed "$name" "$job" "(1) $script: job $job did not end"
    [[ $(field "$job" JobState) == COMPLETED && $(field "$job" ExitCode) == 0:0 ]] ||
        job_failed "$name" "$job" "(1) $script: job $job ended $(field "$job" JobState) $(field "$job" ExitCode)"
    grep -q "2 rank(s)" "$WORK/$name.out" || job_failed "$name" "$job" "(1) $script: not a 2-rank run"
    ranks_on_their_hosts "$WORK/$name.out" || job_failed "$name" "$job" "(1) $script: ranks 0 and 1 are not on ${PREFIX}1 and ${PREFIX}2"
    [[ -f $WORK/$name/checkpoints/ckpt-00000006.safetensors ]] ||
        fail "(1) $script: no checkpoint at step 6 in RUN_DIR/checkpoints: $(ls "$WORK/$name/checkpoints" 2>&1)"
    [[ $(losses "$WORK/$name/metrics.jsonl" | wc -l) -eq 6 ]] || fail "(1) $script: metrics.jsonl does not have 6 steps"
    pass "(1) $script: job $job COMPLETED in $((SECONDS - t0)) s, 2 ranks on ${PREFIX}1+${PREFIX}2, checkpoint and metrics in RUN_DIR"
done

# ---- 2. scancel --signal=USR1: to the steps, and to the batch shell -----------------------------
for script in slurm.sbatch slurm-mpirun.sbatch; do
    for how in steps batch; do
        name=usr1-$how-${script%%.*}
        t0=$SECONDS
        job=$(submit "$name" "$script" "$TINY --max-steps 100000" "${NODES2[@]}" --time=10) ||
            fail "(2) sbatch $script failed"
        wait_for_step "$WORK/$name.out" 20 "$job" || job_failed "$name" "$job" "(2) $script: training did not start"
        if [[ $how == steps ]]; then
            sx scancel --signal=USR1 "$job"
        else
            sx scancel --batch --signal=USR1 "$job"
        fi
        wait_state "$job" 60 COMPLETED FAILED CANCELLED PENDING || job_failed "$name" "$job" "(2) $script: job did not stop"
        stop=$(sed -n 's/^stop requested.*checkpointing at step \([0-9]*\)$/\1/p' "$WORK/$name.out" | head -1)
        [[ -n $stop ]] || job_failed "$name" "$job" "(2) $script $how: no 'stop requested' line"
        [[ -f $WORK/$name/checkpoints/$(printf 'ckpt-%08d.safetensors' "$stop") ]] ||
            fail "(2) $script $how: no checkpoint at step $stop: $(ls "$WORK/$name/checkpoints")"
        [[ $(losses "$WORK/$name/metrics.jsonl" | tail -1 | cut -d' ' -f1) -eq $stop ]] ||
            fail "(2) $script $how: the metrics do not end at step $stop"
        target=$((stop + 5))
        if [[ $how == steps ]]; then
            # Signalled steps: ranks checkpoint and exit 0, the shell cannot tell; COMPLETED.
            [[ $(field "$job" JobState) == COMPLETED && $(field "$job" ExitCode) == 0:0 ]] ||
                job_failed "$name" "$job" "(2) $script $how: job ended $(field "$job" JobState) $(field "$job" ExitCode), expected COMPLETED 0:0"
            job2=$(submit "$name" "$script" "$TINY --max-steps $target" "${NODES2[@]}" --time=10) ||
                fail "(2) resubmission failed"
            what="COMPLETED; resubmitted job $job2"
        else
            # The shell learnt of the signal: it requeued the job.
            [[ $(field "$job" Restarts) -ge 1 ]] || job_failed "$name" "$job" "(2) $script $how: the job was not requeued"
            grep -q "requeueing job $job" "$WORK/$name.out" || job_failed "$name" "$job" "(2) $script $how: no requeue message"
            # The requeued run has the same --max-steps 100000: stop it after a few more steps.
            for ((i = 0; i < 120; i++)); do
                [[ $(field "$job" JobState) == PENDING ]] || break
                release "$job"
                sleep 0.5
            done
            wait_state "$job" 60 RUNNING COMPLETED || job_failed "$name" "$job" "(2) requeued job did not start"
            wait_for_step "$WORK/$name.out" "$target" "$job" || job_failed "$name" "$job" "(2) requeued job did not continue to step $target"
            sx scancel --signal=USR1 "$job"
            wait_state "$job" 60 COMPLETED || job_failed "$name" "$job" "(2) requeued job did not complete after USR1"
            job2=$job
            what="requeued itself (restart $(field "$job" Restarts))"
        fi
        wait_state "$job2" 120 COMPLETED FAILED CANCELLED || job_failed "$name" "$job2" "(2) the continued job did not end"
        [[ $(field "$job2" JobState) == COMPLETED ]] || job_failed "$name" "$job2" "(2) the continued job ended $(field "$job2" JobState)"
        grep -q "resumed from .*$(printf 'ckpt-%08d.safetensors' "$stop")" "$WORK/$name.out" ||
            job_failed "$name" "$job2" "(2) $script $how: did not resume from step $stop"
        if [[ $how == steps ]]; then how="scancel --signal=USR1"; else how="scancel --batch --signal=USR1"; fi
        pass "(2) $script, $how: stopped at step $stop, checkpointed, $what, resumed from step $stop ($((SECONDS - t0)) s)"
    done
done

# ---- calibration: steps per second of the MEDIUM model on 2 nodes ------------------------------
calib=$(submit calib slurm.sbatch "$MEDIUM --max-steps 30" "${NODES2[@]}" --time=5)
wait_state "$calib" 300 COMPLETED FAILED || job_failed calib "$calib" "calibration job did not end"
[[ $(field "$calib" JobState) == COMPLETED ]] || job_failed calib "$calib" "calibration job failed"
step_s=$(python3 -c '
import json, statistics, sys
r = [json.loads(l) for l in open(sys.argv[1])]
rates = [x["images_per_s"] for x in r if x.get("kind") == "progress" and x["step"] > 5]
print(16 / statistics.median(rates))' "$WORK/calib/metrics.jsonl")
echo "slurm.sh: the MEDIUM model takes $step_s s per step on 2 nodes"

# ---- 3. time limit: signal, checkpoint, requeue, resume; bit-exact -----------------------------
# slurmctld checks time limits every 30 s (PERIODIC_TIMEOUT, fixed) and sends --signal=B:SIG@N at
# the first check where the time left is <= N + 30 s: with --time=1 and @10, at a check 20-50 s
# into the run; the kill at the limit comes at a later check (>= 30 s after the signal). The
# uninterrupted run takes about 60 s, so the first run is always interrupted.
steps=$(python3 -c "import math; print(max(60, math.ceil(60 / $step_s)))")
t0=$SECONDS
ref=$(submit ref slurm.sbatch "$MEDIUM --max-steps $steps" "${NODES2[@]}" --time=30)
wait_state "$ref" 600 COMPLETED FAILED CANCELLED || job_failed ref "$ref" "(3) the uninterrupted run did not end"
[[ $(field "$ref" JobState) == COMPLETED ]] || job_failed ref "$ref" "(3) the uninterrupted run failed"
ref_s=$((SECONDS - t0))
t0=$SECONDS
lim=$(submit limit slurm.sbatch "$MEDIUM --max-steps $steps" "${NODES2[@]}" --time=1 --signal=B:USR1@10)
for ((i = 0; i < 1200; i++)); do
    state=$(field "$lim" JobState)
    [[ $state == COMPLETED || $state == FAILED || $state == CANCELLED || $state == TIMEOUT ]] && break
    release "$lim"
    sleep 0.5
done
[[ $(field "$lim" JobState) == COMPLETED ]] || job_failed limit "$lim" "(3) the time-limited job ended $(field "$lim" JobState)"
restarts=$(field "$lim" Restarts)
((restarts >= 1)) || job_failed limit "$lim" "(3) the job was never requeued (restarts $restarts): the run was shorter than the signal's lead time"
grep -q "TIME LIMIT" "$WORK/limit.out" && job_failed limit "$lim" "(3) the job was killed at its time limit"
grep -q "resumed from" "$WORK/limit.out" || job_failed limit "$lim" "(3) no run resumed from a checkpoint"
diff <(losses "$WORK/ref/metrics.jsonl") <(losses "$WORK/limit/metrics.jsonl") >"$WORK/diff3" ||
    { head "$WORK/diff3"; fail "(3) the requeued runs' losses differ from the uninterrupted run"; }
[[ $(losses "$WORK/limit/metrics.jsonl" | tail -1 | cut -d' ' -f1) -eq $steps ]] || fail "(3) the requeued job did not reach step $steps"
echo "slurm-requeue-resume-bit-exact: 1"
pass "(3) --time=1 --signal=B:USR1@10: checkpointed at step(s) $(sed -n 's/^stop requested.*at step \([0-9]*\)$/\1/p' "$WORK/limit.out" | paste -sd, -), requeued $restarts time(s), $steps steps bit-identical to the uninterrupted run (${ref_s} s uninterrupted, $((SECONDS - t0)) s with requeues)"

# ---- 4. node failure: host 2's link is cut mid-run ----------------------------------------------
TIMEOUT=20
every=$(python3 -c "import math; print(max(5, math.ceil(2 / $step_s)))")
t0=$SECONDS
nf=$(submit nodefail slurm.sbatch "$MEDIUM --max-steps 100000 --checkpoint-every $every --collective-timeout $TIMEOUT" \
    "${NODES2[@]}" --time=10)
wait_for_step "$WORK/nodefail.out" $((2 * every + 3)) "$nf" || job_failed nodefail "$nf" "(4) training did not reach step $((2 * every + 3))"
"$SIM" link 2 down
cut_at=$SECONDS
wait_state "$nf" $((TIMEOUT + 60)) COMPLETED FAILED CANCELLED NODE_FAIL PENDING ||
    job_failed nodefail "$nf" "(4) the job did not end within $((TIMEOUT + 60)) s of the cut"
ended=$((SECONDS - cut_at))
nf_state="$(field "$nf" JobState) $(field "$nf" ExitCode) (reason $(field "$nf" Reason), restarts $(field "$nf" Restarts))"
grep -q "collective timeout" "$WORK/nodefail.out" || job_failed nodefail "$nf" "(4) no collective-timeout message"
grep -Eq "have not arrived \(or cannot be reached\): rank 1 \(${PREFIX}2\)" "$WORK/nodefail.out" ||
    job_failed nodefail "$nf" "(4) the message does not name rank 1 on ${PREFIX}2"
# Ranks and launchers: gone from both hosts (slurmd stays; node 2's slurmstepd waits for the link).
for ((i = 0; i < 60; i++)); do
    left=$(in_hosts 'dcnet-dist|srun|mpirun|orted')
    [[ -z $left ]] && break
    sleep 0.5
done
[[ -z $left ]] || { echo "$left"; fail "(4) processes left in the simulated hosts $((SECONDS - cut_at)) s after the cut"; }
gone=$((SECONDS - cut_at))
# Slurm's view: node 2 goes DOWN after SlurmdTimeout without an answer.
for ((i = 0; i < 120; i++)); do
    node2=$(sx sinfo -h -n "${PREFIX}2" -o '%t')
    [[ $node2 == down* ]] && break
    sleep 0.5
done
down_after=$((SECONDS - cut_at))
last=$(find "$WORK/nodefail/checkpoints" -name 'ckpt-*.safetensors' 2>/dev/null | sort | tail -1)
[[ -n $last ]] || fail "(4) no checkpoint written before the cut"
last_step=$(ckpt_step "$last")
# The requeued job (if Slurm requeued it) would wait for 2 nodes: cancel it, resubmit on 1 node.
sx scancel "$nf" >/dev/null 2>&1 || true
nf2=$(submit nodefail slurm.sbatch "$MEDIUM --max-steps $((last_step + 3)) --collective-timeout $TIMEOUT" \
    --nodes=1 --ntasks-per-node=1 --cpus-per-task=1 --time=5)
wait_state "$nf2" 120 COMPLETED FAILED CANCELLED || job_failed nodefail "$nf2" "(4) the resubmitted job did not end"
[[ $(field "$nf2" JobState) == COMPLETED ]] || job_failed nodefail "$nf2" "(4) the resubmitted job ended $(field "$nf2" JobState)"
[[ $(field "$nf2" NodeList) == "${PREFIX}1" ]] || job_failed nodefail "$nf2" "(4) the resubmitted job ran on $(field "$nf2" NodeList)"
tail -n 30 "$WORK/nodefail.out" | grep -q "1 rank(s) .*global batch 16" || job_failed nodefail "$nf2" "(4) not 1 rank with global batch 16"
grep -q "resumed from $last" "$WORK/nodefail.out" || job_failed nodefail "$nf2" "(4) did not resume from $last"
"$SIM" link 2 up
stepd_left=$(in_hosts 'slurmstepd')
# The next test starts from a repaired cluster: the cut job's slurmstepd gone, slurmd on node 2
# answering again, and a TCP connection from host 2 to host 1 going through (an mpirun daemon
# started while the repair was still settling once failed to connect back).
for ((i = 0; i < 120; i++)); do
    [[ -z $(in_hosts 'slurmstepd') && $(sx sinfo -h -n "${PREFIX}2" -o '%t') != *'*' ]] &&
        "$SIM" exec 2 timeout 2 bash -c 'exec 3<>/dev/tcp/198.18.0.11/6818' 2>/dev/null && break
    sleep 0.5
done
pass "(4) link of ${PREFIX}2 cut at step >= $((2 * every + 3)): job $nf ended in ${ended}s as $nf_state, ranks/launchers gone after ${gone}s, node ${PREFIX}2 ${node2:-?} after ${down_after}s; resubmitted on ${PREFIX}1 with 1 rank (global batch 16): resumed from step $last_step, COMPLETED (${stepd_left:+slurmstepd left on the cut host until the link returned; }$((SECONDS - t0)) s)"

# ---- 5. cluster/pbs.sh in a PBS-like environment ------------------------------------------------
AGENT=$("$SIM" agent)
# pbs_job NAME NODEFILE_LINES EXTRA [VAR=VALUE...]: pbs.sh in host 1 (the "mother superior")
# with PBS's variables, in the background; status in NAME.rc.
pbs_job() {
    local name=$1 lines=$2 extra=$3
    shift 3
    mkdir -p "$WORK/pbs-$name.wd"
    # shellcheck disable=SC2086  # one host per word
    printf '%s\n' $lines >"$WORK/pbs-$name.nodes"
    rm -f "$WORK/pbs-$name.rc"
    (
        rc=0
        env PBS_NODEFILE="$WORK/pbs-$name.nodes" PBS_JOBID="$name.pbs-sim" PBS_JOBNAME=dcnet \
            PBS_O_WORKDIR="$WORK/pbs-$name.wd" PBS_ENVIRONMENT=PBS_BATCH \
            RUN_DIR="$WORK/pbs-$name" DCNET_EXTRA_ARGS="$extra" \
            OMPI_MCA_plm_rsh_agent="$AGENT" TCP_INTERFACE=eth0 "$@" \
            timeout --kill-after=10 300 "$SIM" exec 1 bash "$DCNET_ROOT/cluster/pbs.sh" \
            >"$WORK/pbs-$name.out" 2>&1 || rc=$?
        echo $rc >"$WORK/pbs-$name.rc"
    ) &
}
# PBS Pro: one $PBS_NODEFILE line per MPI rank (mpiprocs=1), OMP_NUM_THREADS from ompthreads.
pbs_job pro "${PREFIX}1 ${PREFIX}2" "$TINY --max-steps 6 --checkpoint-every 3" OMP_NUM_THREADS=1
wait
rc=$(cat "$WORK/pbs-pro.rc")
[[ $rc -eq 0 ]] || { show output "$WORK/pbs-pro.out"; fail "(5) pbs.sh (PBS Pro layout) exited $rc"; }
grep -q "2 ranks on 2 nodes, 1 threads per rank" "$WORK/pbs-pro.out" || { show output "$WORK/pbs-pro.out"; fail "(5) pbs.sh did not plan 2 ranks on 2 nodes"; }
ranks_on_their_hosts "$WORK/pbs-pro.out" ||
    { show output "$WORK/pbs-pro.out"; fail "(5) ranks 0 and 1 are not on ${PREFIX}1 and ${PREFIX}2"; }
[[ -f $WORK/pbs-pro/checkpoints/ckpt-00000006.safetensors ]] || fail "(5) pbs.sh: no checkpoint at step 6"
# Torque: one line per core (2 "cores" per host here), RANKS_PER_NODE=1 collapses it.
pbs_job torque "${PREFIX}1 ${PREFIX}1 ${PREFIX}2 ${PREFIX}2" "$TINY --max-steps 100000" RANKS_PER_NODE=1 CORES_PER_NODE=1
wait_for_pbs_step() {
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q "^step *$2 " "$1" 2>/dev/null && return 0
        [[ -f ${1%.out}.rc ]] && return 1
        sleep 0.2
    done
    return 1
}
wait_for_pbs_step "$WORK/pbs-torque.out" 20 || { show output "$WORK/pbs-torque.out"; fail "(5) pbs.sh (Torque layout) did not start training"; }
[[ $(cat "$WORK/pbs-torque/hostfile.torque.pbs-sim") == "${PREFIX}1 slots=1"$'\n'"${PREFIX}2 slots=1" ]] ||
    fail "(5) Torque hostfile: $(cat "$WORK/pbs-torque/hostfile.torque.pbs-sim")"
# qdel / walltime: PBS sends SIGTERM to the job; here to the job shell (see cluster/README.md).
shell_pid=$(pgrep -f "^bash $DCNET_ROOT/cluster/pbs.sh" | head -1)
[[ -n $shell_pid ]] || fail "(5) no pbs.sh process"
kill -TERM "$shell_pid"
wait
rc=$(cat "$WORK/pbs-torque.rc")
stop=$(sed -n 's/^stop requested.*checkpointing at step \([0-9]*\)$/\1/p' "$WORK/pbs-torque.out" | head -1)
[[ $rc -eq 0 && -n $stop ]] || { show output "$WORK/pbs-torque.out"; fail "(5) SIGTERM to pbs.sh: exit $rc, stop step '${stop}'"; }
[[ -f $WORK/pbs-torque/checkpoints/$(printf 'ckpt-%08d.safetensors' "$stop") ]] || fail "(5) no checkpoint at step $stop"
[[ -z $(in_hosts 'dcnet-dist|mpirun|orted') ]] || fail "(5) processes left after pbs.sh: $(in_hosts 'dcnet-dist|mpirun|orted')"
# PBS reruns the job (-r y): the same script resumes from the checkpoint.
pbs_job torque "${PREFIX}1 ${PREFIX}1 ${PREFIX}2 ${PREFIX}2" "$TINY --max-steps $((stop + 4))" RANKS_PER_NODE=1 CORES_PER_NODE=1
wait
[[ $(cat "$WORK/pbs-torque.rc") -eq 0 ]] || { show output "$WORK/pbs-torque.out"; fail "(5) the rerun failed"; }
grep -q "resumed from .*$(printf 'ckpt-%08d.safetensors' "$stop")" "$WORK/pbs-torque.out" ||
    { show output "$WORK/pbs-torque.out"; fail "(5) the rerun did not resume from step $stop"; }
pass "(5) pbs.sh (no PBS server: PBS_NODEFILE etc. set by hand, rsh agent for ssh): PBS Pro and Torque layouts run 2 ranks on 2 hosts; SIGTERM to the job shell stopped all ranks at step $stop with a checkpoint, exit 0; the rerun resumed from it"

echo "slurm.sh: all done in $((SECONDS - started)) s"
