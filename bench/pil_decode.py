#!/usr/bin/env python3
"""PIL reference for bench/data.bench.ts: decode + random horizontal flip of every image of an
InsightFace .rec (what arcface_torch's MXFaceDataset does before ToTensor), one process, one core.

Usage: pil_decode.py DIR_WITH_TRAIN_REC [--normalise]
Prints one JSON line: {"images": N, "seconds": wall, "cpu": cpu seconds}.
--normalise also converts to float32 CHW in [-1, 1] with numpy (the same output as mfr's f32).

pil_decode.py DIR --serve: reads the payloads once, then runs one pass per line read from stdin
("decode", "decode --normalise" or "decode --from-file": each record read from train.rec
as it is decoded, as MXFaceDataset reads them; otherwise from payloads read beforehand), printing one JSON line each, until stdin closes. The bench
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


def rec_reader(d):
    """Each record read from train.rec when asked, as MXFaceDataset does (mxnet's read_idx: seek,
    read the header, read the payload), then its IRHeader skipped."""
    with open(os.path.join(d, "train.idx")) as f:
        offsets = {int(k): int(v) for k, v in (line.split("\t") for line in f if line.strip())}
    f = open(os.path.join(d, "train.rec"), "rb")

    def record(key):
        f.seek(offsets[key])
        parts = []
        while True:
            magic, lrec = struct.unpack("<II", f.read(8))
            assert magic == 0xCED7230A
            cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
            parts.append(f.read(length))
            f.seek((4 - length % 4) % 4, 1)
            if cflag in (0, 3):
                return struct.pack("<I", 0xCED7230A).join(parts)

    flag = struct.unpack_from("<I", record(0), 0)[0]
    keys = range(1, int(struct.unpack_from("<f", record(0), 24)[0])) if flag > 0 else sorted(offsets)

    def payloads():
        for k in keys:
            r = record(k)
            fl = struct.unpack_from("<I", r, 0)[0]
            yield r[24 + 4 * fl :]

    return payloads


def run(payloads, normalise):
    rng = random.Random(0)
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for b in payloads:
        n += 1
        im = Image.open(io.BytesIO(b)).convert("RGB")
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        a = np.asarray(im)
        if normalise:
            a = (a.transpose(2, 0, 1).astype(np.float32) - 127.5) / 127.5
    return {"images": n, "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def main():
    payloads = read_payloads(sys.argv[1])
    from_file = rec_reader(sys.argv[1])
    if "--serve" not in sys.argv:
        print(json.dumps(run(payloads, "--normalise" in sys.argv)))
        return
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] != "decode":
            raise SystemExit(f"unknown command {line.strip()!r}")
        source = from_file() if "--from-file" in words else payloads
        print(json.dumps(run(source, "--normalise" in words)), flush=True)


if __name__ == "__main__":
    main()
