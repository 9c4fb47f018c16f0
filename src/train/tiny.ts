// The smallest real training run: a small CNN learns synthetic classes (class prototypes plus
// noise) with SGD. It proves the whole engine path (ops, autograd, BatchNorm, optimizer, scopes)
// end to end, and is what `mfr demo` runs until the full pipeline lands.
import * as T from "../torch/index.ts";
import { BatchNorm2d, Conv2d, Flatten, Linear, PReLU, Sequential } from "../nn/index.ts";
import { SGD } from "../optim/index.ts";

export interface TinyRunOptions {
  classes?: number;
  steps?: number;
  batch?: number;
  size?: number;
  seed?: number;
  lr?: number;
  onStep?: (step: number, loss: number) => void;
}

export interface TinyRunResult {
  losses: number[];
  accuracy: number;
}

export function tinyTrainingRun(o: TinyRunOptions = {}): TinyRunResult {
  const classes = o.classes ?? 8;
  const steps = o.steps ?? 60;
  const batch = o.batch ?? 32;
  const size = o.size ?? 16;
  T.manualSeed(o.seed ?? 0);
  const prototypes = T.randn([classes, 3, size, size]).keep();
  const model = new Sequential(
    new Conv2d(3, 8, 3, { padding: 1, bias: false }),
    new BatchNorm2d(8),
    new PReLU(8),
    new Conv2d(8, 16, 3, { stride: 2, padding: 1, bias: false }),
    new BatchNorm2d(16),
    new PReLU(16),
    new Flatten(),
    new Linear(16 * (size / 2) * (size / 2), classes),
  );
  const opt = new SGD(model.parameters(), { lr: o.lr ?? 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const sample = (): { x: T.Tensor; y: T.Tensor } => {
    const y = T.randint(0, classes, [batch]);
    const x = prototypes.indexSelect(0, y).add(T.randn([batch, 3, size, size]).mul(4));
    return { x, y };
  };
  const losses: number[] = [];
  for (let step = 1; step <= steps; step++) {
    const loss = T.scope(() => {
      const { x, y } = sample();
      const l = T.crossEntropy(model.forward(x), y);
      opt.zeroGrad();
      l.backward();
      opt.step();
      return l.item();
    });
    losses.push(loss);
    o.onStep?.(step, loss);
  }
  model.eval();
  const accuracy = T.scope(() =>
    T.noGrad(() => {
      const { x, y } = sample();
      return model.forward(x).argmax(1).eq(y).float().mean().item();
    }),
  );
  model.dispose();
  prototypes.dispose();
  return { losses, accuracy };
}
