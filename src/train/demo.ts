// The demo behind `mfr demo` / `npm run demo`: the real pipeline on embedded data. It renders
// synthetic identities (src/data synth), trains a width-reduced iResNet with the CosFace head
// through the same trainer as `mfr train`, and verifies (the config's `verify`) on identities never
// seen in training, half of their images wearing a synthetic mask: TPR at FPR 1% over every pair
// and over masked-unmasked pairs, before, during and after training.
import fs from "node:fs";
import path from "node:path";
import { synthesizeDataset } from "../data/index.ts";
import { ProcessGroup } from "../distributed/index.ts";
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
  const verify = o.config.verify;
  const cfg = parseConfig({
    ...o.config,
    runDir: path.join(o.dir, "run"),
    data: { ...o.config.data, path: train_ },
    steps: o.steps,
    // The held-out identities wherever this demo's folder is.
    ...(verify
      ? { verify: { ...verify, sets: verify.sets.map((s) => ("data" in s ? { ...s, data: heldOut } : s)) } }
      : {}),
  });
  fs.rmSync(cfg.runDir, { recursive: true, force: true });
  return await train(cfg, { group: ProcessGroup.single(), onEvent: emit });
}
