#!/usr/bin/env python3
"""Rebuild this sample from the full CIFAR-10 binary files (gzipped official format).

usage: make_sample.py SOURCE_DIR [DEST_DIR]

From each data_batch_K.bin.gz take the first 40 records of every class (400 per file,
file order kept); from test_batch.bin.gz the first 100 of every class (1000). Writes
.bin.gz with `gzip -9 -n` and prints the record indices taken.
"""
import gzip, os, subprocess, sys

REC = 3073
src = sys.argv[1]
dst = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))

def sample(name, per_class):
    data = gzip.open(os.path.join(src, name + ".gz"), "rb").read()
    assert len(data) % REC == 0
    counts = [0] * 10
    taken = []
    for i in range(len(data) // REC):
        lab = data[i * REC]
        if counts[lab] < per_class:
            counts[lab] += 1
            taken.append(i)
    assert counts == [per_class] * 10, counts
    out = b"".join(data[i * REC:(i + 1) * REC] for i in taken)
    with open(os.path.join(dst, name), "wb") as f:
        f.write(out)
    subprocess.run(["gzip", "-9", "-n", "-f", os.path.join(dst, name)], check=True)
    print(f"{name}: {len(taken)} records, indices {taken[0]}..{taken[-1]}: {taken}")

for k in range(1, 6):
    sample(f"data_batch_{k}.bin", 40)
sample("test_batch.bin", 100)
