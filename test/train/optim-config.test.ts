// The config's optim section: linear LR scaling, warm-up composed with each decay (closed-form
// values along a run), LARS accepted with ZeRO, and bad schedules refused naming the key.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { LRScheduler } from "../../src/optim/index.ts";
import { parseConfig, type TrainConfigInput } from "../../src/train/index.ts";
import { baseLr, optimizerFactory, scheduleOptions } from "../../src/train/optim-config.ts";

const base: TrainConfigInput = {
  runDir: "/tmp/x",
  data: { path: "/x.rec", batchSize: 64 },
  model: {},
  head: {},
  optim: {},
  dist: {},
  steps: 14,
};
const withOptim = (optim: TrainConfigInput["optim"]): TrainConfigInput => ({ ...base, optim });

/** The lr of every step of a run of `cfg` on `world` ranks, as the trainer's scheduler sets it. */
function lrs(input: TrainConfigInput, world: number): number[] {
  const cfg = parseConfig(input);
  const p = T.zeros([2]).requiresGrad_().keep();
  const s = new LRScheduler(
    optimizerFactory(cfg.optim, baseLr(cfg, world))([{ params: [p] }]),
    scheduleOptions(cfg),
  );
  const out: number[] = [];
  for (let i = 0; i < cfg.steps; i++, s.step()) out.push(s.lr);
  p.dispose();
  return out;
}
const near = (got: number[], want: number[]): void =>
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-12, `step ${i}: ${g} vs ${want[i]}`));

test("linear scaling: lr × data.batchSize × world size / optim.referenceBatch; unset, lr as given", () => {
  const cfg = parseConfig(withOptim({ lr: 0.01, referenceBatch: 256 }));
  assert.equal(baseLr(cfg, 8), (0.01 * 64 * 8) / 256);
  assert.equal(baseLr(parseConfig(withOptim({ lr: 0.01 })), 8), 0.01);
  assert.throws(() => parseConfig(withOptim({ referenceBatch: 0 })), /optim\.referenceBatch/);
});

test("warm-up then multistep: closed-form rates at every step, scaled linearly", () => {
  // 4 ranks × 64 = 256 = 2 × 128: base 0.2. Warm-up over 4 steps from 0.2/4; ×0.5 at 6 and at 10.
  const got = lrs(
    withOptim({
      lr: 0.1,
      referenceBatch: 128,
      warmupSteps: 4,
      decay: { name: "multistep", milestones: [6, 10], gamma: 0.5 },
    }),
    4,
  );
  near(got, [0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]);
});

test("warm-up composes with poly, cosine and constant decay (closed form)", () => {
  const run = (decay: "poly" | "cosine" | "constant"): number[] =>
    lrs(withOptim({ lr: 1, warmupSteps: 4, decay }), 1);
  const ramp = [0.25, 0.5, 0.75, 1];
  // After warm-up t = (i − 4) / 10 runs over steps 4..13.
  const t = Array.from({ length: 10 }, (_, j) => j / 10);
  near(run("poly"), [...ramp, ...t.map((x) => (1 - x) ** 2)]);
  near(run("cosine"), [...ramp, ...t.map((x) => (1 + Math.cos(Math.PI * x)) / 2)]);
  near(run("constant"), [...ramp, ...t.map(() => 1)]);
});

test("LARS with ZeRO is accepted; bad milestones are refused naming optim.decay.milestones", () => {
  const c = parseConfig({ ...withOptim({ name: "lars" }), train: { zero: 2 } });
  assert.deepEqual([c.optim.name, c.train.zero], ["lars", 2]);
  const ms = (milestones: number[], extra: object = {}): TrainConfigInput =>
    withOptim({ warmupSteps: 2, ...extra, decay: { name: "multistep", milestones } });
  assert.throws(() => parseConfig(ms([8, 5])), /optim\.decay\.milestones: \[8, 5\] must increase/);
  assert.throws(
    () => parseConfig(ms([2, 5])),
    /optim\.decay\.milestones: 2 falls in the warm-up \(optim\.warmupSteps 2\)/,
  );
  assert.throws(
    () => parseConfig(ms([5, 14])),
    /optim\.decay\.milestones: 14 is not before the run's end \(steps 14\)/,
  );
  assert.throws(() => parseConfig(ms([])), /optim\.decay/);
  assert.throws(
    () => parseConfig(withOptim({ decay: { name: "multistep", milestones: [5], gamma: 1 } })),
    /optim\.decay/,
  );
  assert.throws(
    () => parseConfig(withOptim({ decay: { name: "multistep", milestones: [5], every: 2 } as never })),
    /optim\.decay/,
  );
  assert.throws(() => parseConfig(withOptim({ decay: "step" as never })), /optim\.decay/);
});
