#!/bin/bash
# Data-parallel DCNet training under PBS Pro (OpenPBS) or Torque, launched with OpenMPI's mpirun.
# Submit:  qsub cluster/pbs.sh
# Resume:  the job is rerunnable (-r y). When PBS reruns it (node failure, preemption with
#          requeue, `qrerun`), the script finds the checkpoints and passes --resume.
#
# PBS Pro: 2 nodes ("chunks"), each with 32 cores split into 2 MPI ranks of 16 threads.
#PBS -N dcnet
#PBS -l select=2:ncpus=32:mpiprocs=2:ompthreads=16
#PBS -l place=scatter:excl
#PBS -l walltime=04:00:00
#PBS -r y
#PBS -j oe
# Torque uses a different resource syntax; replace the select line with:
#   #PBS -l nodes=2:ppn=32
# and set RANKS_PER_NODE=2 below (Torque's $PBS_NODEFILE lists each node once per core).

set -uo pipefail
cd "${PBS_O_WORKDIR:-$PWD}" || exit 1

# ---- Paths on the shared filesystem --------------------------------------------------------------
DATA_DIR=${DATA_DIR:-/shared/datasets/cifar-10-batches-bin}
RUN_DIR=${RUN_DIR:-/shared/$USER/dcnet-runs/tanh-cos-cnn9}
CHECKPOINT_DIR=${CHECKPOINT_DIR:-$RUN_DIR/checkpoints}
DCNET=${DCNET:-/shared/$USER/dcnet-dist/.build/release/dcnet-dist}

TRAIN_ARGS=(
    --data "$DATA_DIR" --dataset cifar10
    --model cnn9 --operator tanh --angular cos
    --epochs 100 --batch-size 128 --optimizer sgd --lr 0.1 --schedule cosine --weight-decay 5e-4
    --seed 1
    --checkpoint-dir "$CHECKPOINT_DIR" --metrics "$RUN_DIR/metrics.jsonl"
    --checkpoint-every 500 --keep 3
)

# ---- Layout --------------------------------------------------------------------------------------
# PBS Pro writes one $PBS_NODEFILE line per MPI rank (mpiprocs), so the file is the rank list.
# OMP_NUM_THREADS comes from ompthreads. Torque lists one line per core: collapse it to one entry
# per node and give each node RANKS_PER_NODE slots.
NODES=$(sort -u "$PBS_NODEFILE" | wc -l)
if [[ -n ${RANKS_PER_NODE:-} ]]; then
    HOSTFILE=$RUN_DIR/hostfile.$PBS_JOBID
    mkdir -p "$RUN_DIR"
    sort -u "$PBS_NODEFILE" | sed "s/\$/ slots=$RANKS_PER_NODE/" > "$HOSTFILE"
    NP=$((NODES * RANKS_PER_NODE))
else
    HOSTFILE=$PBS_NODEFILE
    NP=$(wc -l < "$PBS_NODEFILE")
    RANKS_PER_NODE=$((NP / NODES))
fi
CORES_PER_NODE=${CORES_PER_NODE:-$(nproc)}
THREADS=${OMP_NUM_THREADS:-$((CORES_PER_NODE / RANKS_PER_NODE))}
export OPENBLAS_NUM_THREADS=$THREADS
export OMP_NUM_THREADS=$THREADS

# ---- Transport (see cluster/README.md) ----------------------------------------------------------
MCA=(--mca btl "self,vader,tcp" --mca btl_tcp_if_include "${TCP_INTERFACE:-eth0}")
# InfiniBand / RoCE:  MCA=(--mca pml ucx)

mkdir -p "$RUN_DIR" "$CHECKPOINT_DIR"

# PBS has no restart counter that both PBS Pro and Torque set; existing checkpoints are the
# reliable sign that this is a rerun.
RESUME=()
if compgen -G "$CHECKPOINT_DIR/*" >/dev/null; then
    RESUME=(--resume)
fi

# PBS sends SIGTERM to the job (walltime, qdel, preemption) and SIGKILL after kill_delay
# (default 10 s on many sites; ask for more if a checkpoint takes longer). Forward it to mpirun,
# which passes it to the ranks; they checkpoint and exit 0.
mpirun_pid=
trap '[[ -n $mpirun_pid ]] && kill -TERM "$mpirun_pid" 2>/dev/null' TERM

echo "$(date -Is) job $PBS_JOBID: $NP ranks on $NODES nodes, $THREADS threads per rank ${RESUME[*]}"

# SLURM_NTASKS is not set under PBS, so the program's world-size check is skipped here; the
# hostfile decides the layout.
mpirun -np "$NP" --hostfile "$HOSTFILE" \
    --map-by "ppr:${RANKS_PER_NODE}:node:PE=${THREADS}" --bind-to core \
    "${MCA[@]}" \
    -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS \
    "$DCNET" train "${TRAIN_ARGS[@]}" --threads "$THREADS" "${RESUME[@]}" &
mpirun_pid=$!

status=0
while true; do
    wait "$mpirun_pid"
    status=$?
    kill -0 "$mpirun_pid" 2>/dev/null || break
done
exit "$status"
