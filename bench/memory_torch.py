"""PyTorch reference for bench/memory.bench.ts: peak resident memory and step time of an iResNet
forward + backward + SGD step in PyTorch eager (Debian's python3-torch: the same libtorch), plain
or with torch.utils.checkpoint around each stage, one process, so the saving checkpointing brings
in PyTorch can be set beside mfr's. The iResNet is bench/models_torch.py's.

  python3 memory_torch.py BLOCKS BATCH none|stage WARMUP STEPS  ->  one JSON line
"""
import json
import resource
import sys
import time

import torch
from torch.utils.checkpoint import checkpoint

from models_torch import IResNet


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main():
    blocks = [int(b) for b in sys.argv[1].split(",")]
    batch, mode = int(sys.argv[2]), sys.argv[3]
    warmup, steps = int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = IResNet(blocks).train()
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 112, 112)

    def forward(x):
        h = model.prelu(model.bn1(model.conv1(x)))
        for s in stages:
            h = checkpoint(s, h, use_reentrant=False) if mode == "stage" else s(h)
        return model.features(model.fc(torch.flatten(model.bn2(h), 1)))

    baseline = rss_mb()
    seconds = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        forward(x).square().mean().backward()
        opt.step()
        if i >= warmup:
            seconds.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"peakMB": peak, "baselineMB": baseline, "seconds": seconds, "params": params}))


if __name__ == "__main__":
    main()
