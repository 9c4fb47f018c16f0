#!/usr/bin/python3
"""PyTorch side of bench/engine.bench.ts: answers JSON requests on stdin with timings.

Run by the bench with Debian's python3-torch (the same libtorch 1.13 that mfr links).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def small_op(n):
    a = torch.randn(4)
    b = torch.randn(4)
    t0 = time.perf_counter()
    for _ in range(n):
        a + b
    return (time.perf_counter() - t0) / n * 1e6


def conv_net(batch, iters):
    torch.manual_seed(0)
    ws = [torch.randn(32, 3, 3, 3) * 0.1, torch.randn(64, 32, 3, 3) * 0.05, torch.randn(128, 64, 3, 3) * 0.05]
    ws = [w.requires_grad_() for w in ws]
    bns = [(torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)) for c in (32, 64, 128)]
    x = torch.randn(batch, 3, 112, 112)
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        h = x
        for w, (g, b) in zip(ws, bns):
            h = F.relu(F.batch_norm(F.conv2d(h, w, stride=2, padding=1), None, None, g, b, training=True))
        h.mean().backward()
        for w in ws:
            w.grad = None
        for g, b in bns:
            g.grad = None
            b.grad = None
        out.append(time.perf_counter() - t0)
    return out


for line in sys.stdin:
    req = json.loads(line)
    torch.set_num_threads(req["threads"])
    if req["what"] == "small_op":
        res = {"us": small_op(req["n"])}
    else:
        res = {"seconds": conv_net(req["batch"], req["iters"])}
    print(json.dumps(res), flush=True)
