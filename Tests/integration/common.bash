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
