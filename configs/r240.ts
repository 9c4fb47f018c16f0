// The challenge's submitted student backbone, ResNet240 (3/25/88/3 blocks), on WebFace42M with
// every peak-memory switch on: activations checkpointed every block (per stage replays whole
// stages at once and saves far less: docs/training.md), each rank's batch in two
// micro-batches, bf16 autocast (the head's logits and softmax stay fp32) and ZeRO-2 for the
// backbone's momentum and gradients.
import { defineConfig } from "../src/train/config.ts";
import base from "./base.ts";

export default defineConfig({
  ...base,
  runDir: "runs/webface42m-r240",
  model: { ...base.model, backbone: "r240" },
  train: { checkpoint: { every: 1 }, microBatches: 2, amp: "bf16", zero: 2 },
});
