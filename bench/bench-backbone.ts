// A backbone for the export benchmarks, random but with eval-mode activations of order 1.
import * as T from "../src/torch/index.ts";
import { Conv2d, Linear, init } from "../src/nn/index.ts";
import { type Backbone, buildBackbone } from "../src/models/index.ts";

/**
 * Weights that keep eval-mode activations O(1): with untrained BatchNorm statistics (mean 0, var 1)
 * arcface_torch's N(0, 0.1) conv init grows activations ~5x per conv and overflows fp32 in deep
 * nets, and inf/denormal arithmetic would colour the timings. Fan-in scaling keeps them finite.
 */
export function benchBackbone(name: string, residualGain = 1): Backbone {
  T.manualSeed(0);
  const m = buildBackbone(name);
  for (const [path, c] of m.namedModules()) {
    if (c instanceof Conv2d || c instanceof Linear) {
      const fanIn = c.weight.numel / c.weight.size(0);
      // A residual branch's last conv scaled by residualGain: each block then adds a small
      // fraction to its input, and a thousand blocks stay finite (they double the variance each
      // at gain 1).
      const gain = path.endsWith(".conv2") ? residualGain : 1;
      init.normal_(c.weight, 0, gain / Math.sqrt(fanIn));
    }
  }
  return m.eval();
}
