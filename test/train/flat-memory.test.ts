// A long training run through the trainer holds a constant number of live tensors: every tensor a
// step makes is freed by the step (scopes, chains, borrowed gradients), none is left to the GC's
// safety net, and the run frees everything it made when it ends. The addon counts live tensor
// handles exactly, so the count may only follow the epoch (the loader prefetches one batch, none
// after an epoch's last), the same at the same step of every epoch: no tolerance is needed.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { native } from "../../src/torch/native.ts";
import { synthesizeDataset } from "../../src/data/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { parseConfig, train } from "../../src/train/index.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-flat-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

for (const variant of [
  { name: "SGD", optim: { name: "sgd" }, train: {} },
  {
    name: "LARS, micro-batches 2, checkpointing",
    optim: { name: "lars" },
    train: { microBatches: 2, checkpoint: "stage" },
  },
  { name: "AdamW, ZeRO-2", optim: { name: "adamw" }, train: { zero: 2 } },
] as const) {
  test(`${variant.name}: 30 steps keep the live tensor count flat`, async () => {
    const data = path.join(tmp, "data");
    if (!fs.existsSync(data))
      await synthesizeDataset({ out: data, identities: 6, imagesPerIdentity: 4, seed: 3 });
    const live: number[] = [];
    const cfg = parseConfig({
      runDir: path.join(tmp, variant.name.replace(/\W+/g, "-")),
      device: "cpu",
      data: { path: data, batchSize: 4, workers: 1, maskProb: 0.5 },
      model: { backbone: "[1,1,1,1]", width: 0.125, embeddingSize: 16 },
      optim: { ...variant.optim, lr: 0.05, warmupSteps: 2 },
      train: variant.train,
      steps: 30,
      seed: 1,
    });
    const before = native.liveCount();
    const r = await train(cfg, {
      group: ProcessGroup.single(),
      onEvent: (e) => {
        if (e.kind === "step") live.push(native.liveCount());
      },
    });
    assert.equal(live.length, 30);
    assert.ok(r.losses.every((l) => Number.isFinite(l.loss)));
    // Step 1 creates the optimizer state; from then on a step frees what it makes.
    const perEpoch = 24 / 4;
    const drift = live.slice(1 + perEpoch).map((n, i) => n - live[1 + i]!);
    assert.deepEqual(drift, new Array(drift.length).fill(0), `live tensors per step: ${live.join(", ")}`);
    r.backbone.dispose();
    assert.equal(native.liveCount(), before, "the run left tensors behind");
  });
}
