#!/bin/bash
# Data-parallel DCNet training under PBS Pro (OpenPBS) or Torque, launched with OpenMPI's mpirun.
# Submit:  qsub cluster/pbs.sh
# Resume:  the job is rerunnable (-r y). When PBS reruns it (node failure, preemption with
#          requeue, `qrerun`), the script finds the checkpoints and passes --resume.
#
# Overrides without editing (qsub -v VAR=value,... or qsub -V passes them to the job):
#   DATA_DIR, RUN_DIR, CHECKPOINT_DIR, DCNET   paths, see below
#   DCNET_EXTRA_ARGS   more training flags, word-split and appended after all others (the last
#                      occurrence of a flag wins), e.g. DCNET_EXTRA_ARGS="--max-steps 20 --width 0.5"
#   RANKS_PER_NODE     Torque layout (see below); CORES_PER_NODE (default: nproc on the first node)
#   TCP_INTERFACE      the data network interface (default eth0) or a subnet (10.0.0.0/16)
#   mpirun as root needs OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
# Debian's OpenMPI is built without PBS's TM interface (--without-tm): mpirun starts its daemons
# on the other nodes with ssh (passwordless ssh between the job's nodes is needed).
# Not tested under a PBS server (none is packaged in Debian). Tests/integration/slurm.sh runs this
# script on two simulated hosts with PBS's variables set by hand (PBS_NODEFILE, PBS_JOBID,
# PBS_O_WORKDIR) and the cluster-sim rsh agent instead of ssh (OMPI_MCA_plm_rsh_agent).
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
# Word-split on purpose (no globbing): flags with spaces in their values do not fit here.
read -r -a EXTRA_ARGS <<<"${DCNET_EXTRA_ARGS:-}"

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
# A node that becomes unreachable: with OpenMPI's defaults mpirun notices only after ~8 minutes of
# TCP keepalive (or ~15 minutes of retransmission) and the allocation burns meanwhile. These make
# mpirun and every remote daemon exit about 11 s after a node is cut off (the same settings as
# cluster/openmpi-fault.conf; see cluster/README.md, "When a node fails"). Keep the trainer's
# --collective-timeout above 11 s.
MCA+=(--mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 2 --mca oob_tcp_keepalive_probes 3)
# InfiniBand / RoCE:  MCA=(--mca pml ucx)

mkdir -p "$RUN_DIR" "$CHECKPOINT_DIR"

# PBS has no restart counter that both PBS Pro and Torque set; existing checkpoints are the
# reliable sign that this is a rerun.
RESUME=()
if compgen -G "$CHECKPOINT_DIR/*" >/dev/null; then
    RESUME=(--resume)
fi

# PBS sends SIGTERM to the job (walltime, qdel, preemption) and SIGKILL after kill_delay
# (default 10 s on many sites; ask for more if a checkpoint takes longer). The ranks checkpoint
# on SIGUSR1 as on SIGTERM and exit 0; mpirun relays SIGUSR1 to every rank on every node.
# Forward USR1, not TERM: when PBS signals the whole session, mpirun has already received one
# SIGTERM (it then sends SIGTERM to the ranks and SIGKILL one second later,
# odls_base_sigkill_timeout), and OpenMPI's mpirun treats a second SIGTERM within 5 s as "abort
# now": it exits at once and the ranks die without a checkpoint.
mpirun_pid=
# shellcheck disable=SC2317  # invoked by the trap, not unreachable
forward_term() {
    echo "$(date -Is) SIGTERM: asking the ranks to checkpoint and stop"
    [[ -n $mpirun_pid ]] && kill -USR1 "$mpirun_pid" 2>/dev/null
}
trap forward_term TERM

echo "$(date -Is) job $PBS_JOBID: $NP ranks on $NODES nodes, $THREADS threads per rank ${RESUME[*]}"

# SLURM_NTASKS is not set under PBS, so the program's world-size check is skipped here; the
# hostfile decides the layout.
mpirun -np "$NP" --hostfile "$HOSTFILE" \
    --map-by "ppr:${RANKS_PER_NODE}:node:PE=${THREADS}" --bind-to core \
    "${MCA[@]}" \
    -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS \
    "$DCNET" train "${TRAIN_ARGS[@]}" --threads "$THREADS" "${RESUME[@]}" "${EXTRA_ARGS[@]}" &
mpirun_pid=$!

status=0
while true; do
    wait "$mpirun_pid"
    status=$?
    kill -0 "$mpirun_pid" 2>/dev/null || break
done
exit "$status"
