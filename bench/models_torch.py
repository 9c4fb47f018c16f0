"""PyTorch eager side of bench/models.bench.ts: arcface_torch's iResNet forward as written there
(in-place residual add, in-place dropout), timed on request so both sides run in the same
session, interleaved, on the same threads.

Protocol on stdin/stdout, one JSON object a line:
  {"threads": 2, "blocks": [3,4,14,3], "batch": 32}  ->  {"ready": true, "params": N}
  {"run": 2}                       ->  {"seconds": [t1, t2], "cpu": [c1, c2]}  (wall, process CPU)
"""
import json
import sys
import time

import torch
from torch import nn


class IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes, eps=1e-5)
            )

    def forward(self, x):
        identity = x
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return out


class IResNet(nn.Module):
    def __init__(self, blocks, num_features=512):
        super().__init__()
        ch = (64, 128, 256, 512)
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for s, n in enumerate(blocks):
            layers = [IBasicBlock(inplanes if i == 0 else ch[s], ch[s], 2 if i == 0 else 1) for i in range(n)]
            setattr(self, f"layer{s + 1}", nn.Sequential(*layers))
            inplanes = ch[s]
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(p=0, inplace=True)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.1)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        x = self.dropout(x)
        return self.features(self.fc(x))


def main():
    model = x = None
    for line in sys.stdin:
        msg = json.loads(line)
        if "threads" in msg:
            torch.set_num_threads(msg["threads"])
            torch.manual_seed(0)
            model = IResNet(msg["blocks"]).train()
            x = torch.randn(msg["batch"], 3, 112, 112)
            reply = {"ready": True, "params": sum(p.numel() for p in model.parameters())}
        else:
            seconds, cpu = [], []
            for _ in range(msg["run"]):
                t0, c0 = time.perf_counter(), time.process_time()
                model.zero_grad(set_to_none=True)
                model(x).square().mean().backward()
                seconds.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            reply = {"seconds": seconds, "cpu": cpu}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
