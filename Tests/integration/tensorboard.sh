#!/usr/bin/env bash
# train --tensorboard under 2 ranks, read back by the `tensorboard` package's own event reader and
# served by a real TensorBoard server on loopback:
#   (a) every scalar of the metrics file is in the event files with its step and value, from rank 0
#       only (one run per job), with the exposed-communication share and the per-layer radius;
#   (b) a resumed run appends to the same run without any step twice;
#   (c) a server on 127.0.0.1 lists the run and its tags through its HTTP API;
#   (d) an event file cut mid-record (an interrupted run) still reads up to its last whole record;
#   (e) dcnet-dist tensorboard converts a metrics file into the same scalars.
# Skipped, saying so, only where PyPI's tensorboard cannot be installed.
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

if ! python3 -c 'import tensorboard' 2>/dev/null; then
    python3 -m pip install --quiet tensorboard >/dev/null 2>&1 ||
        python3 -m pip install --quiet --break-system-packages tensorboard >/dev/null 2>&1 || true
fi
if ! python3 -c 'import tensorboard' 2>/dev/null; then
    echo "$(basename "$0"): SKIPPED: the tensorboard Python package is not installed and pip could not install it"
    exit 0
fi

make_data "$WORK/data" 40 16
run=(train --data "$WORK/data" --operator tanh --learnable-radius --batch-size 16 --epochs 3 "${SMALL[@]}"
     --log-every 4 --eval-every 1 --checkpoint-dir "$WORK/ckpt" --checkpoint-every 5 --metrics "$WORK/metrics.jsonl"
     --tensorboard "$WORK/tb/run")

# (a) and (b): 9 steps (and the evaluation a stopped run writes), then a resume from the checkpoint at
# step 5 to the end: 3 epochs of 13 steps (200 images, batch 16).
timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${run[@]}" --max-steps 9 \
    >"$WORK/a.out" 2>"$WORK/a.err" || { show stderr "$WORK/a.err"; fail "(a) the first run failed"; }
rm -f "$WORK"/ckpt/ckpt-00000009.safetensors
timeout --kill-after=10 300 bash -c 'mpi_run 2 "$@"' mpi_run "$DCNET_BIN" "${run[@]}" --resume \
    >"$WORK/b.out" 2>"$WORK/b.err" || { show stderr "$WORK/b.err"; fail "(b) the resumed run failed"; }
grep -q "resumed from .*ckpt-00000005" "$WORK/b.out" || { show stdout "$WORK/b.out"; fail "(b) did not resume from step 5"; }
[[ $(find "$WORK/tb" -name '*tfevents*' | wc -l) -eq 2 ]] \
    || fail "(a) expected 2 event files (first run and resume, rank 0 only): $(find "$WORK/tb" -type f)"

python3 - "$WORK/tb/run" "$WORK/metrics.jsonl" <<'PY' || fail "(a)/(b) the event files do not match the metrics"
import glob, json, math, sys
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.util import tensor_util
run, metrics = sys.argv[1], sys.argv[2]
seen = {}
for f in sorted(glob.glob(run + "/*tfevents*")):
    for ev in event_file_loader.EventFileLoader(f).Load():
        for v in ev.summary.value:
            value = float(tensor_util.make_ndarray(v.tensor)) if v.HasField("tensor") else v.simple_value
            key = (v.tag, ev.step)
            assert key not in seen, f"step {ev.step} of {v.tag} written twice"
            seen[key] = value
# The metrics file holds the first run's records and the resumed run's; the event files keep the
# first record of a step (a progress window after a resume is shorter, so its mean differs).
expected = {}
class First(dict):
    def __setitem__(self, key, value):
        if key not in self: super().__setitem__(key, value)
expected = First()
for line in open(metrics):
    r = json.loads(line)
    if r["kind"] == "progress":
        expected[("train/loss", r["step"])] = r["loss"]
        expected[("speed/exposed_communication_share", r["step"])] = r["exposed_communication"]
    elif r["kind"] == "epoch":
        expected[("epoch/test_accuracy", r["step"])] = r["test_accuracy"]
        for layer, rho in r["operator_radius"].items():
            expected[("operator_radius/" + layer, r["step"])] = rho
for key, value in expected.items():
    assert key in seen, f"missing {key}"
    assert math.isclose(seen[key], value, rel_tol=1e-6, abs_tol=1e-7), f"{key}: {seen[key]} != {value}"
steps = sorted(s for t, s in seen if t == "epoch/test_accuracy")
assert steps == [9, 13, 26, 39], steps
assert any(t.startswith("operator_radius/stage3") for t, _ in seen), sorted({t for t, _ in seen})
print(f"{len(seen)} scalars, {len(expected)} checked against the metrics file")
PY
pass "(a) every scalar of the metrics file is in the event files; (b) the resume repeated no step"

# (c) a real server on loopback lists the run and its tags.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m tensorboard.main --logdir "$WORK/tb" --host 127.0.0.1 --port "$port" >"$WORK/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; cleanup' EXIT
tags=""
for _ in $(seq 1 60); do
    tags=$(python3 - "$port" <<'PY' 2>/dev/null
import json, sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/data/plugin/scalars/tags"
print(json.dumps(json.load(urllib.request.urlopen(url, timeout=5))))
PY
    ) || true
    [[ $tags == *'"epoch/test_accuracy"'* ]] && break
    sleep 1
done
kill $server 2>/dev/null || true
[[ $tags == *'"run"'* && $tags == *'"epoch/test_accuracy"'* && $tags == *'"train/loss"'* ]] \
    || { show "server log" "$WORK/server.log"; fail "(c) the server does not list the run's tags: $tags"; }
pass "(c) tensorboard on 127.0.0.1:$port serves the run and its tags"

# (d) an event file cut mid-record.
first=$(find "$WORK/tb/run" -name '*tfevents*' | sort | head -1)
mkdir -p "$WORK/torn/run"
head -c $(($(stat -c %s "$first") - 7)) "$first" >"$WORK/torn/run/events.out.tfevents.1.torn"
python3 - "$WORK/torn/run/events.out.tfevents.1.torn" "$first" <<'PY' || fail "(d) the torn file does not read"
import sys
from tensorboard.backend.event_processing import event_file_loader
def count(path):
    return sum(len(ev.summary.value) for ev in event_file_loader.EventFileLoader(path).Load())
torn, whole = count(sys.argv[1]), count(sys.argv[2])
assert torn == whole - 1, (torn, whole)
print(f"{torn} of {whole} scalars read from the torn file")
PY
pass "(d) a file cut mid-record reads up to its last whole record"

# (e) the converter.
"$DCNET_BIN" tensorboard --metrics "$WORK/metrics.jsonl" --out "$WORK/converted" >"$WORK/e.out" 2>&1 \
    || { show output "$WORK/e.out"; fail "(e) dcnet-dist tensorboard failed"; }
python3 - "$WORK/converted" <<'PY' || fail "(e) the converted run is not readable"
import glob, sys
from tensorboard.backend.event_processing import event_accumulator
files = glob.glob(sys.argv[1] + "/*/*tfevents*")
assert len(files) == 1, files
acc = event_accumulator.EventAccumulator(files[0].rsplit("/", 1)[0]); acc.Reload()
tags = acc.Tags()["tensors"] + acc.Tags()["scalars"]
assert "epoch/test_accuracy" in tags and "train/loss" in tags, tags
PY
"$DCNET_BIN" tensorboard --metrics "$WORK/metrics.jsonl" --out "$WORK/converted" >"$WORK/e2.out" 2>&1 \
    && fail "(e) converting into a directory that already holds the run exited 0"
grep -q "already holds a TensorBoard run" "$WORK/e2.out" || { show output "$WORK/e2.out"; fail "(e) no clear refusal"; }
pass "(e) dcnet-dist tensorboard converts the metrics file and refuses to mix runs"
