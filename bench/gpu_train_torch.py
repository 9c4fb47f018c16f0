"""PyTorch side of bench/gpu_train.ts: one rank's training step of the recipe on one GPU, as
arcface_torch writes it (iResNet backbone under torch.autocast, PartialFC_V2's sampled, normalised
linear head with CosFace, SGD with momentum on both, GradScaler for fp16), on a fixed synthetic
batch so that only the step is timed. One case per process; prints one JSON line:
  {"imagesPerSec": ..., "stepMs": ..., "peakMB": ..., "loss": ...}
Usage: python3 bench/gpu_train_torch.py '{"blocks": [3,13,30,3], "batch": 128, "classes": 1000000,
        "rate": 1.0, "amp": "bf16", "steps": 10, "warmup": 3}'
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models_torch import IResNet  # noqa: E402

o = json.loads(sys.argv[1])
dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
torch.cuda.set_device(dev)
torch.manual_seed(0)
B, C, D, rate = o["batch"], o["classes"], 512, o["rate"]
dtype = torch.float16 if o["amp"] == "fp16" else torch.bfloat16

model = IResNet(o["blocks"]).to(dev).train()
weight = torch.nn.Parameter(torch.normal(0, 0.01, (C, D), device=dev))
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.SGD([{"params": params}, {"params": [weight]}], lr=0.1, momentum=0.9, weight_decay=5e-4)
scaler = torch.cuda.amp.GradScaler(enabled=o["amp"] == "fp16")
x = torch.randn(B, 3, 112, 112, device=dev)
y = torch.randint(0, C, (B,), device=dev)
num_sample = int(rate * C)


def head(emb, labels):
    labels = labels.clone()
    w = weight
    if num_sample < C:  # PartialFC_V2.sample: positives forced in, random negatives
        with torch.no_grad():
            positive = torch.unique(labels, sorted=True)
            perm = torch.rand(size=[C], device=dev)
            perm[positive] = 2.0
            index = torch.topk(perm, k=max(num_sample, positive.numel()))[1].sort()[0]
            labels = torch.searchsorted(index, labels)
        w = weight[index]
    logits = F.linear(F.normalize(emb.float()), F.normalize(w)).clamp(-1, 1)
    rows = torch.arange(labels.numel(), device=dev)
    logits[rows, labels] -= 0.4  # CosFace
    return F.cross_entropy(logits * 64.0, labels)


def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=dtype):
        emb = model(x)
    loss = head(emb, y)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(params, 5)
    scaler.step(opt)
    scaler.update()
    return loss.item()


for _ in range(o["warmup"]):
    step()
torch.cuda.synchronize()
torch.cuda.reset_peak_memory_stats(dev)
times = []
loss = 0.0
for _ in range(o["steps"]):
    t0 = time.perf_counter()
    loss = step()  # .item() waits for the step's kernels
    times.append(time.perf_counter() - t0)
times.sort()
med = times[len(times) // 2]
print(
    json.dumps(
        {
            "imagesPerSec": B / med,
            "stepMs": med * 1000,
            "peakMB": torch.cuda.max_memory_allocated(dev) / 2**20,
            "loss": loss,
        }
    ),
    flush=True,
)
