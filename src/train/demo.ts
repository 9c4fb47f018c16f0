// The demo behind `mfr demo` / `npm run demo`: the real pipeline on embedded data. It renders
// synthetic identities (src/data synth), trains a width-reduced iResNet with the CosFace head
// through the same trainer as `mfr train`, and verifies on identities never seen in training,
// half of their images wearing a synthetic mask: TPR at FPR 1% and the best pair accuracy,
// before, during and after training.
import fs from "node:fs";
import path from "node:path";
import * as T from "../torch/index.ts";
import { DataLoader, synthesizeDataset } from "../data/index.ts";
import { batchToTensors } from "../data/tensors.ts";
import { ProcessGroup } from "../distributed/index.ts";
import { type Backbone } from "../models/index.ts";
import { parseConfig, type TrainConfigInput } from "./config.ts";
import { type TrainEvent, type TrainResult, train } from "./trainer.ts";

export interface DemoOptions {
  /** Root of the demo's files (data, run). */
  dir: string;
  steps: number;
  seed?: number;
  config: TrainConfigInput;
  onEvent?: (e: TrainEvent | { kind: "synth"; images: number; identities: number; seconds: number }) => void;
}

export interface Verification {
  /** TPR at FPR = 1% over every pair of held-out images. */
  tprAtFpr1e2: number;
  /** Best pair accuracy over thresholds (balanced: mean of TPR and TNR). */
  accuracy: number;
  pairs: number;
}

export async function runDemo(o: DemoOptions): Promise<TrainResult> {
  const emit = o.onEvent ?? ((): void => undefined);
  const train_ = path.join(o.dir, "data");
  const heldOut = path.join(o.dir, "held-out");
  for (const [dir, identities, images, seed] of [
    [train_, 48, 12, 1],
    [heldOut, 24, 4, 2],
  ] as const) {
    if (fs.existsSync(path.join(dir, ".complete"))) continue;
    const t0 = performance.now();
    const r = await synthesizeDataset({
      out: dir,
      identities,
      imagesPerIdentity: images,
      seed: seed + (o.seed ?? 0),
    });
    fs.writeFileSync(path.join(dir, ".complete"), "");
    emit({ kind: "synth", ...r, seconds: (performance.now() - t0) / 1000 });
  }
  const probe = await heldOutBatch(heldOut);
  try {
    const cfg = parseConfig({
      ...o.config,
      runDir: path.join(o.dir, "run"),
      data: { ...o.config.data, path: train_ },
      steps: o.steps,
    });
    fs.rmSync(cfg.runDir, { recursive: true, force: true });
    return await train(cfg, {
      group: ProcessGroup.single(),
      onEvent: emit,
      verify: async (backbone) => ({ ...verify(backbone, probe.x, probe.y) }),
    });
  } finally {
    probe.x.dispose();
    probe.y.dispose();
  }
}

/** All held-out images, half of them masked, in one batch. */
async function heldOutBatch(dir: string): Promise<{ x: T.Tensor; y: T.Tensor }> {
  const loader = await DataLoader.open(dir, {
    batchSize: 96,
    shuffle: false,
    workers: 1,
    maskProb: 0.5,
    flipProb: 0,
    tail: "pad",
  });
  try {
    for await (const b of loader.epoch(0)) {
      return T.scope(() => {
        const { x, y } = batchToTensors(b);
        return { x: x.keep(), y: y.keep() };
      });
    }
    throw new Error(`${dir}: no images`);
  } finally {
    await loader.close();
  }
}

/** Cosine similarity of every pair of held-out images: TPR at FPR 1%, best balanced accuracy. */
export function verify(backbone: Backbone, x: T.Tensor, y: T.Tensor): Verification {
  return T.scope(() =>
    T.noGrad(() => {
      const e = T.normalize(backbone.forward(x));
      const n = e.size(0);
      const sims = e.matmul(e.transpose(0, 1));
      const idx = T.arange(0, n);
      const upper = idx.unsqueeze(1).lt(idx.unsqueeze(0));
      const same = y.unsqueeze(1).eq(y.unsqueeze(0));
      const pos = Float64Array.from(sims.maskedSelect(upper.logicalAnd(same)).toArray() as number[]);
      const neg = Float64Array.from(
        sims.maskedSelect(upper.logicalAnd(same.logicalNot())).toArray() as number[],
      );
      pos.sort();
      neg.sort();
      const threshold = neg[Math.min(neg.length - 1, Math.floor(0.99 * neg.length))]!;
      const tpr = pos.filter((s) => s > threshold).length / pos.length;
      // Best balanced accuracy: sweep thresholds over the merged scores.
      let best = 0;
      let i = 0;
      let j = 0;
      while (i < pos.length || j < neg.length) {
        const t = j >= neg.length || (i < pos.length && pos[i]! <= neg[j]!) ? pos[i++]! : neg[j++]!;
        // Scores ≤ t are called "different".
        const tp = pos.length - lowerCount(pos, t);
        const tn = lowerCount(neg, t);
        best = Math.max(best, (tp / pos.length + tn / neg.length) / 2);
      }
      return { tprAtFpr1e2: tpr, accuracy: best, pairs: pos.length + neg.length };
    }),
  );
}

function lowerCount(sorted: Float64Array, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
