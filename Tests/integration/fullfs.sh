#!/usr/bin/env bash
# A full file system ends a run with a message naming the file, a non-zero exit and no hang, and
# leaves earlier files intact:
#   (a) --metrics on a full tmpfs (checkpoints elsewhere): training stops, the checkpoints are fine
#   (b) --checkpoint-dir on a tmpfs with room for one checkpoint: the second fails, the first stays
#   (c) dcnet-dist report --output on a full tmpfs
# Needs root (mount -t tmpfs).
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

if [[ $(id -u) -ne 0 ]]; then
    echo "$(basename "$0"): SKIPPED: needs root to mount a small tmpfs"
    exit 0
fi
mounts=()
unmount_all() {
    local m
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap unmount_all EXIT
# mount_small DIR KIB: a tmpfs of KIB KiB at DIR.
mount_small() {
    mkdir -p "$1"
    mount -t tmpfs -o "size=${2}k" tmpfs "$1" || { echo "$(basename "$0"): SKIPPED: mount -t tmpfs failed"; exit 0; }
    mounts+=("$1")
}
# fill DIR LEAVE_KIB: fills the tmpfs at DIR except for LEAVE_KIB KiB.
fill() {
    dd if=/dev/zero of="$1/filler" bs=1k count=100000 2>/dev/null || true
    truncate -s "-$2k" "$1/filler"
}
limit=120
make_data "$WORK/data" 20 8
common=(train --data "$WORK/data" --batch-size 8 --epochs 4 "${SMALL[@]}")

# (a) metrics on a tmpfs with 4 KiB left: a few progress lines fit, then a write fails.
mount_small "$WORK/fs-a" 64
fill "$WORK/fs-a" 4
rc=0
timeout --kill-after=10 "$limit" bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${common[@]}" --max-steps 40 \
    --metrics "$WORK/fs-a/metrics.jsonl" --checkpoint-dir "$WORK/ckpt-a" --checkpoint-every 1 \
    >"$WORK/a.out" 2>"$WORK/a.err" || rc=$?
[[ $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/a.err"; fail "(a) the job hung"; }
[[ $rc -ne 0 ]] || { show stdout "$WORK/a.out"; fail "(a) exit 0 with the metrics file system full"; }
grep -q "$WORK/fs-a/metrics.jsonl: write failed.*No space left on device" "$WORK/a.err" \
    || { show stderr "$WORK/a.err"; fail "(a) no message naming the metrics file and the cause"; }
for c in "$WORK"/ckpt-a/ckpt-*.safetensors; do
    "$DCNET_BIN" inspect "$c" >/dev/null 2>"$WORK/a-inspect.err" \
        || { show stderr "$WORK/a-inspect.err"; fail "(a) checkpoint $c is damaged"; }
done
pass "(a) metrics on a full file system: exit $rc, $(grep -m1 'No space' "$WORK/a.err")"

# (b) checkpoints on a tmpfs with room for one checkpoint and a half: the second write fails.
timeout --kill-after=10 "$limit" "$DCNET_BIN" "${common[@]}" --max-steps 1 --checkpoint-dir "$WORK/probe" \
    >"$WORK/probe.out" 2>&1 || { show output "$WORK/probe.out"; fail "(b) could not write a probe checkpoint"; }
size=$(stat -c %s "$WORK"/probe/ckpt-00000001.safetensors)
mount_small "$WORK/fs-b" $((size * 3 / 2 / 1024 + 8))
rc=0
timeout --kill-after=10 "$limit" bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${common[@]}" --max-steps 6 \
    --checkpoint-dir "$WORK/fs-b" --checkpoint-every 2 --keep 3 >"$WORK/b.out" 2>"$WORK/b.err" || rc=$?
[[ $rc -ne 124 && $rc -ne 137 ]] || { show stderr "$WORK/b.err"; fail "(b) the job hung"; }
[[ $rc -ne 0 ]] || { show stdout "$WORK/b.out"; fail "(b) exit 0 with the checkpoint file system full"; }
grep -q "$WORK/fs-b/ckpt-00000004.safetensors: .*No space left on device" "$WORK/b.err" \
    || { show stderr "$WORK/b.err"; fail "(b) no message naming the checkpoint and the cause"; }
"$DCNET_BIN" inspect "$WORK/fs-b/ckpt-00000002.safetensors" >/dev/null 2>"$WORK/b-inspect.err" \
    || { show stderr "$WORK/b-inspect.err"; fail "(b) the earlier checkpoint is damaged"; }
leftovers=$(find "$WORK/fs-b" -name '.*tmp*')
[[ -z $leftovers ]] || fail "(b) temporary files left behind: $leftovers"
pass "(b) checkpoints on a full file system: exit $rc, step 2 intact"

# (c) report --output on a full tmpfs: the suite holds run r1 (the metrics of a normal run).
mkdir -p "$WORK/suite/r1"
timeout --kill-after=10 "$limit" "$DCNET_BIN" "${common[@]}" --epochs 1 --eval-every 1 \
    --metrics "$WORK/suite/r1/metrics.jsonl" >"$WORK/c1.out" 2>&1 || { show output "$WORK/c1.out"; fail "(c) run"; }
cat >"$WORK/suite/suite.json" <<'JSON'
{"groups": [{"name": "g", "claim": "c", "runs": ["r1"], "test": {"kind": "higher-accuracy"}}]}
JSON
mount_small "$WORK/fs-c" 64
fill "$WORK/fs-c" 0
rc=0
timeout --kill-after=10 "$limit" "$DCNET_BIN" report --suite "$WORK/suite" --output "$WORK/fs-c/report" \
    >"$WORK/c.out" 2>"$WORK/c.err" || rc=$?
[[ $rc -ne 124 && $rc -ne 137 ]] || fail "(c) report hung"
[[ $rc -ne 0 ]] || { show stdout "$WORK/c.out"; fail "(c) report exit 0 on a full file system"; }
grep -q "$WORK/fs-c/report.*No space left on device" "$WORK/c.err" \
    || { show stderr "$WORK/c.err"; fail "(c) no message naming the file and the cause"; }
pass "(c) report on a full file system: exit $rc, $(grep -m1 'No space' "$WORK/c.err")"
