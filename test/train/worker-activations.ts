// Measures the memory a training forward + backward of a small iResNet takes above what was live
// before it (peak RSS, reset through /proc/self/clear_refs), plain and checkpointed every block.
// Started with glibc's mmap threshold fixed low and mfr's heap tuning off, so every tensor of
// more than 128 KiB is its own mapping, returned to the kernel when freed: RSS then follows the
// live tensors instead of the heap's high-water mark. Prints one JSON line.
import fs from "node:fs";
import * as T from "../../src/torch/index.ts";
import { IResNet } from "../../src/models/index.ts";

export const BLOCKS = [2, 2, 2, 2] as const;
export const WIDTH = 0.5;
export const BATCH = 8;
export const FEATURES = 64;

const status = (key: string): number =>
  Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(fs.readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

if (process.argv[1]?.endsWith("worker-activations.ts")) {
  T.manualSeed(0);
  const model = new IResNet({ blocks: BLOCKS, width: WIDTH, numFeatures: FEATURES });
  model.train();
  const x = T.randn([BATCH, 3, 112, 112]);
  const step = (): void =>
    T.scope(() => {
      const loss = model.forward(x).square().mean();
      if (model.checkpoint) model.tape.backwardFrom(loss);
      else loss.backward();
    });
  step(); // gradients allocated, kernels' caches warm: what is measured below is the activations
  const out: Record<string, number> = {};
  for (const [name, policy] of [
    ["plain", undefined],
    ["checkpointed", { every: 1 }],
  ] as const) {
    model.checkpoint = policy;
    step();
    const base = status("VmRSS");
    fs.writeFileSync("/proc/self/clear_refs", "5");
    step();
    out[name] = status("VmHWM") - base;
  }
  console.log(JSON.stringify(out));
}
