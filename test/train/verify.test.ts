// Verification while training (the config's `verify`): the hook runs at step 0, every `every`
// steps and at the end, on rank 0's backbone in eval mode, and logs what src/eval computes on the
// same backbone; sharded over ranks it gives the figures of one process; bad sets are refused by
// config key.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as T from "../../src/torch/index.ts";
import { DataLoader, synthesizeDataset } from "../../src/data/index.ts";
import { batchToTensors } from "../../src/data/tensors.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { buildBackbone } from "../../src/models/index.ts";
import { evaluatePairs, loadVerificationSet, singleProcess, verifySet } from "../../src/eval/index.ts";
import { type TrainEvent, Verifier, parseConfig, train } from "../../src/train/index.ts";
import { writeBinSet } from "../helpers/bin-set.ts";
import { simulatedGroup } from "../helpers/collectives.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-verify-"));
const data = path.join(tmp, "data");
const heldOut = path.join(tmp, "held-out");
const bin = path.join(tmp, "tiny.bin");
const FPR = ["1e-1", "1e-2"];

before(async () => {
  await synthesizeDataset({ out: data, identities: 6, imagesPerIdentity: 4, seed: 1 });
  await synthesizeDataset({ out: heldOut, identities: 5, imagesPerIdentity: 4, seed: 2 });
  writeBinSet(bin, 20);
});

const config = (runDir: string, verify: unknown): unknown => ({
  runDir,
  data: { path: data, batchSize: 4, workers: 1, maskProb: 0 },
  model: { backbone: "[1,1,1,1]", width: 0.125, embeddingSize: 16 },
  head: {},
  optim: { lr: 0.05, warmupSteps: 1 },
  dist: {},
  steps: 3,
  verify,
});

const verifyConfig = { every: 2, sets: [{ bin }, { data: heldOut, fpr: FPR }] };

test("the hook runs at step 0, every `every` steps and at the end, and logs src/eval's figures", async () => {
  const runDir = path.join(tmp, "run");
  T.manualSeed(0);
  const events: TrainEvent[] = [];
  const r = await train(parseConfig(config(runDir, verifyConfig)), {
    group: ProcessGroup.single(),
    onEvent: (e) => events.push(e),
  });
  const backbone = r.backbone;
  assert.equal(backbone.training, true, "train mode restored after the last verification");
  const lines = fs
    .readFileSync(path.join(runDir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const records = lines.filter((l) => l.type === "verify");
  assert.deepEqual(
    records.map((l) => [l.step, l.set, l.protocol]),
    [
      [0, "tiny", "bin"],
      [0, "held-out", "mfr"],
      [2, "tiny", "bin"],
      [2, "held-out", "mfr"],
      [3, "tiny", "bin"],
      [3, "held-out", "mfr"],
    ],
  );
  assert.deepEqual(
    events.filter((e) => e.kind === "verify").map((e) => [e.step, e.set]),
    records.map((l) => [l.step, l.set]),
  );
  // Step records are untouched: one per step, no type.
  assert.deepEqual(
    lines.filter((l) => l.type === undefined).map((l) => l.step),
    [1, 2, 3],
  );

  // The last figures are those of the final backbone in eval mode (train mode's batch statistics
  // would give others), computed directly.
  backbone.eval();
  const embed = (x: Float32Array, n: number): Float32Array =>
    T.scope(() =>
      T.noGrad(() => backbone.forward(T.tensor(x, { shape: [n, 3, 112, 112] })).data() as Float32Array),
    );
  const want = await verifySet(loadVerificationSet(bin), embed);
  const lastBin = records.at(-2)!;
  assert.equal(lastBin.pairs, 20);
  assert.deepEqual(lastBin.results, { accuracy: want.accuracy, std: want.std, xnorm: want.xnorm });

  // The MFR protocol: every held-out image embedded once, half of them masked (the probes).
  const loader = await DataLoader.open(heldOut, {
    batchSize: 20,
    shuffle: false,
    workers: 1,
    maskProb: 0.5,
    flipProb: 0,
    seed: 0,
    dtype: "u8",
    layout: "nhwc",
  });
  let ev: Awaited<ReturnType<typeof evaluatePairs>> | undefined;
  for await (const b of loader.epoch(0)) {
    const { x, y, masked } = batchToTensors(b);
    const e = T.noGrad(() => backbone.forward(x));
    ev = await evaluatePairs(
      { embeddings: e, labels: y.toArray() as number[], groups: masked.to("u8").toArray() as number[] },
      { fpr: FPR },
    );
    assert.ok(masked.to("i64").sum().item() > 0, "some probes are masked");
  }
  await loader.close();
  const lastMfr = records.at(-1)!;
  assert.equal(lastMfr.pairs, (20 * 19) / 2);
  const expected: Record<string, number> = {};
  for (const [subset, s] of Object.entries(ev!.subsets))
    for (const k of FPR) if (s.tpr[k] !== null) expected[`${subset}@${k}`] = s.tpr[k]!;
  assert.ok("masked-unmasked@1e-2" in expected);
  assert.deepEqual(lastMfr.results, expected);
  backbone.dispose();
});

test("sharded over 2 ranks, verification gives the figures of one process", async () => {
  T.manualSeed(5);
  const backbone = buildBackbone("[1,1,1,1]", { width: 0.125, numFeatures: 16 });
  backbone.eval();
  const v = parseConfig(config(path.join(tmp, "unused"), { ...verifyConfig, batchSize: 3 })).verify!;
  const open = (group: typeof singleProcess) => Verifier.open(v, { group, device: "cpu", imageSize: 112 });
  const one = await (await open(singleProcess)).run(backbone);
  const ranks = await Promise.all(simulatedGroup(2).map(open));
  const two = await Promise.all(ranks.map((r) => r.run(backbone)));
  // Equal but for float32 rounding (the shards batch their images differently): to 1e-6 relative.
  for (const rank of two)
    rank.forEach((r, i) => {
      assert.deepEqual(
        [r.set, r.pairs, Object.keys(r.results)],
        [one[i]!.set, one[i]!.pairs, Object.keys(one[i]!.results)],
      );
      for (const [k, x] of Object.entries(r.results))
        assert.ok(
          Math.abs(x - one[i]!.results[k]!) <= 1e-6 * Math.abs(x),
          `${r.set} ${k}: ${x} vs ${one[i]!.results[k]}`,
        );
    });
  assert.ok(Object.keys(one[1]!.results).length >= 4);
  backbone.dispose();
});

test("verify is validated by key, and a set that cannot be read fails before the first step", async () => {
  const bad = (verify: unknown, re: RegExp) => assert.throws(() => parseConfig(config("r", verify)), re);
  bad({ every: 5, sets: [] }, /verify\.sets: .*(at least|>=) ?1/i);
  bad({ every: 0, sets: [{ bin }] }, /verify\.every/);
  bad(
    { every: 5, sets: [{ data: heldOut, fpr: ["1e-x"] }] },
    /verify\.sets\.0\.fpr\.0: FPR '1e-x' is not a decimal/,
  );
  bad({ every: 5, sets: [{ bin }, { bin: "other/tiny.bin" }] }, /verify\.sets\.1: two sets are named 'tiny'/);
  bad({ every: 5, sets: [{ bin, fpr: ["1e-2"] }] }, /verify\.sets\.0/);
  assert.throws(() => parseConfig({ ...(config("r", undefined) as object), verifyEvery: 5 }), /verifyEvery/);
  assert.equal(parseConfig(config("r", null)).verify, null);

  const runDir = path.join(tmp, "run-missing");
  const missing = path.join(tmp, "nope.bin");
  await assert.rejects(
    train(parseConfig(config(runDir, { every: 1, sets: [{ bin }, { bin: missing }] })), {
      group: ProcessGroup.single(),
    }),
    (e: Error) => e.message.includes("verify.sets[1]") && e.message.includes(missing),
  );
  assert.ok(!fs.existsSync(path.join(runDir, "metrics.jsonl")), "no step ran");
});
