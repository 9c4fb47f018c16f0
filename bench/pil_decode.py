#!/usr/bin/env python3
"""PIL reference for bench/data.bench.ts: decode + random horizontal flip of every image of an
InsightFace .rec (what arcface_torch's MXFaceDataset does before ToTensor), one process, one core.

Usage: pil_decode.py DIR_WITH_TRAIN_REC [--normalise]
Prints one JSON line: {"images": N, "seconds": wall, "cpu": cpu seconds}.
--normalise also converts to float32 CHW in [-1, 1] with numpy (the same output as mfr's f32).

pil_decode.py DIR --serve: reads the payloads once, then runs one pass per line read from stdin
("decode" or "decode --normalise"), printing one JSON line each, until stdin closes. The bench
starts it once, before it allocates anything big: spawning a process for every pass forked the
Node process each time, and the copy-on-write faults that follow a fork landed on mfr's next
measurement (the loader's reused batch buffers), not on PIL's.
"""
import io
import json
import os
import random
import struct
import sys
import time

import numpy as np
from PIL import Image


def read_payloads(d):
    with open(os.path.join(d, "train.idx")) as f:
        offsets = {int(k): int(v) for k, v in (line.split("\t") for line in f if line.strip())}
    data = open(os.path.join(d, "train.rec"), "rb").read()

    def record(key):
        pos, parts = offsets[key], []
        while True:
            magic, lrec = struct.unpack_from("<II", data, pos)
            assert magic == 0xCED7230A
            cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
            parts.append(data[pos + 8 : pos + 8 + length])
            pos += 8 + ((length + 3) & ~3)
            if cflag in (0, 3):
                return struct.pack("<I", 0xCED7230A).join(parts)

    flag, label = struct.unpack_from("<If", record(0), 0)
    keys = range(1, int(struct.unpack_from("<f", record(0), 24)[0])) if flag > 0 else sorted(offsets)
    out = []
    for k in keys:
        r = record(k)
        fl = struct.unpack_from("<I", r, 0)[0]
        out.append(r[24 + 4 * fl :])
    return out


def run(payloads, normalise):
    rng = random.Random(0)
    t0, c0 = time.perf_counter(), time.process_time()
    for b in payloads:
        im = Image.open(io.BytesIO(b)).convert("RGB")
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        a = np.asarray(im)
        if normalise:
            a = (a.transpose(2, 0, 1).astype(np.float32) - 127.5) / 127.5
    return {"images": len(payloads), "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def main():
    payloads = read_payloads(sys.argv[1])
    if "--serve" not in sys.argv:
        print(json.dumps(run(payloads, "--normalise" in sys.argv)))
        return
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] != "decode":
            raise SystemExit(f"unknown command {line.strip()!r}")
        print(json.dumps(run(payloads, "--normalise" in words)), flush=True)


if __name__ == "__main__":
    main()
