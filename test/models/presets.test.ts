// Every preset builds and trains (forward + backward) at width 1/8; parameter counts and the
// layout-only cost agree with the built modules and with PyTorch's counts of the same networks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as T from "../../src/torch/index.ts";
import { PRESET_NAMES, backboneCost, buildBackbone, resolvePreset } from "../../src/models/index.ts";

const counts = JSON.parse(
  readFileSync(new URL("../fixtures/models/param_counts.json", import.meta.url), "utf8"),
) as Record<string, number>;

for (const name of PRESET_NAMES) {
  test(`${name} at width 1/8: forward and backward on a batch of 2`, () => {
    T.manualSeed(1);
    const m = buildBackbone(name, { width: 1 / 8, numFeatures: 64 });
    try {
      assert.equal(m.numParameters(), backboneCost(name, { width: 1 / 8, numFeatures: 64 }).params);
      T.scope(() => {
        const y = m.forward(T.randn([2, 3, 112, 112]));
        assert.deepEqual(y.shape, [2, 64]);
        y.square().sum().backward();
        const withGrad = m.parameters().filter((p) => p.grad !== undefined).length;
        const trainable = m.parameters().filter((p) => p.requiresGrad).length;
        assert.equal(withGrad, trainable, "every trainable parameter receives a gradient");
        assert.ok(Number.isFinite(y.sum().item()));
      });
    } finally {
      m.dispose();
    }
  });
}

test("full-size parameter counts match arcface_torch's networks (r100 ≈ 65.2 M with a 512-d FC)", () => {
  for (const [name, n] of Object.entries(counts)) assert.equal(backboneCost(name).params, n, name);
  assert.equal(Math.round(backboneCost("r100").params / 1e5) / 10, 65.2);
  const r50 = buildBackbone("r50");
  assert.equal(r50.numParameters(), counts.r50);
  r50.dispose();
  const mbf = buildBackbone("mbf");
  assert.equal(mbf.numParameters(), counts.mbf);
  mbf.dispose();
});

test("multiply-accumulates at 112x112 match arcface_torch's README (r18 2.6, r50 6.3, r100 12.1, r200 23.5 G)", () => {
  // ptflops (behind arcface_torch's figures) also counts BN, PReLU and the residual adds: < 0.1 G.
  const readme = { r18: 2.6, r50: 6.3, r100: 12.1, r200: 23.5 };
  for (const [name, g] of Object.entries(readme)) {
    const ours = backboneCost(name).macs / 1e9;
    assert.ok(ours <= g + 0.05 && ours >= g - 0.1, `${name}: ${ours.toFixed(3)} G vs ${g} G`);
  }
});

test("custom block lists and clear errors", () => {
  assert.deepEqual(resolvePreset("[3,4,14,3]").blocks, [3, 4, 14, 3]);
  assert.deepEqual(resolvePreset("2,2,2,2").blocks, [2, 2, 2, 2]);
  assert.equal(backboneCost([3, 4, 14, 3]).params, backboneCost("r50").params);
  assert.throws(() => resolvePreset("r51"), /unknown backbone 'r51'.*r50/);
  assert.throws(() => buildBackbone([3, 0, 1, 1]), /four positive integers/);
  const m = buildBackbone("r18", { width: 1 / 8 });
  assert.throws(() => m.forward(T.zeros([1, 3, 64, 64])), /expected input \[N, 3, 112, 112\]/);
  m.dispose();
  assert.throws(() => buildBackbone("mbf", { checkpoint: "stage" }), /MobileFaceNet/);
});

test("the embedding BN's weight is frozen as in arcface_torch", () => {
  const m = buildBackbone("r18", { width: 1 / 8 });
  const frozen = m
    .namedParameters()
    .filter(([, p]) => !p.requiresGrad)
    .map(([n]) => n);
  assert.deepEqual(frozen, ["features.weight"]);
  m.dispose();
});
