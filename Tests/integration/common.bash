# shellcheck shell=bash
# Shared by Tests/integration/*.sh (sourced, never run: not executable, not *.sh).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib.sh"
cd "$DCNET_ROOT"

DCNET_BIN=${DCNET_BIN:-$DCNET_ROOT/.build/debug/dcnet-dist}
if [[ ! -x $DCNET_BIN ]]; then
    echo "$(basename "$0"): DCNET_BIN=$DCNET_BIN is not an executable (build with swift build first)" >&2
    exit 1
fi
# mpirun flags as mpi_run uses them, for MPMD command lines (A : B) that mpi_run cannot express.
MPI_FLAGS=(--oversubscribe --bind-to none)
[[ $(id -u) -eq 0 ]] && MPI_FLAGS+=(--allow-run-as-root)

WORK=$(mktemp -d "/tmp/dcnet-it-$(basename "$0" .sh)-XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

# Small, fast training arguments: CNN-9 at 1/16 width, one BLAS thread, no evaluation until the end.
SMALL=(--width 0.0625 --threads 1 --eval-every 0 --eval-limit 8 --log-every 1 --no-augment)

fail() { echo "$(basename "$0"): FAIL: $*" >&2; exit 1; }
pass() { echo "$(basename "$0"): ok: $*"; }

# make_data DIR [TRAIN_PER_FILE] [TEST]: a small CIFAR-10 binary set (random pixels, labels i % 10).
make_data() {
    python3 - "$1" "${2:-20}" "${3:-20}" <<'PY'
import os, random, sys
d, per, test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d, exist_ok=True)
rng = random.Random(1)
def records(n, offset):
    out = bytearray()
    for i in range(n):
        out.append((i + offset) % 10)
        out += rng.randbytes(3072)
    return bytes(out)
for k in range(1, 6):
    open(os.path.join(d, f"data_batch_{k}.bin"), "wb").write(records(per, k))
open(os.path.join(d, "test_batch.bin"), "wb").write(records(test, 0))
PY
}

# show NAME FILE: prints a captured output file, indented, for failure diagnosis.
show() { echo "--- $1:"; sed 's/^/    /' "$2"; }

# require_namespaces WHY: skips the calling test (exit 0, saying why) unless it runs as root on a
# machine that can create network namespaces (the simulated cluster of scripts/cluster-sim).
require_namespaces() {
    local name
    name=$(basename "$0")
    if [[ $(id -u) -ne 0 ]]; then
        echo "$name: SKIPPED: needs root $1"
        exit 0
    fi
    if ! ip netns add "dcnet-probe-$$" 2>/dev/null; then
        echo "$name: SKIPPED: this machine cannot create network namespaces (ip netns add failed)"
        exit 0
    fi
    ip netns delete "dcnet-probe-$$"
}

# ckpt_step FILE: the step of a checkpoint file name (ckpt-00000042.safetensors -> 42).
ckpt_step() { echo $((10#$(basename "$1" .safetensors | sed 's/ckpt-//'))); }
