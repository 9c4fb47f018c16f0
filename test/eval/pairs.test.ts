import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { type PairEvalOptions, evaluatePairs } from "../../src/eval/pairs.ts";
import { simulatedGroup } from "../../src/eval/collectives.ts";
import { bruteForce, engineScores, exactScores } from "./brute.ts";

const FPRS = ["0", "1e-7", "1e-3", "0.01", "0.1", "0.5", "1"];
// Forces every fallback: radix passes for any k > 3 and a genuine counting pass.
const BOUNDED: PairEvalOptions = { candidateLimit: 3, genuineLimit: 0, rocTailFpr: 0 };

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function clustered(n: number, ids: number, dim: number, seed: number) {
  const rnd = lcg(seed);
  T.manualSeed(seed);
  const labels = Array.from({ length: n }, () => Math.floor(rnd() * ids) * 3 + 11); // sparse ids
  const groups = Array.from({ length: n }, () => (rnd() < 0.4 ? 1 : 0));
  const centres = T.randn([ids * 3 + 11, dim]);
  const embeddings = centres
    .indexSelect(0, T.tensor(Int32Array.from(labels)).to("i64"))
    .add(T.randn([n, dim]).mul(1.2));
  return { embeddings, labels, groups };
}

test("bounded-memory results equal brute force exactly on random clustered data", async () => {
  const input = clustered(300, 30, 24, 1);
  const want = bruteForce(engineScores(input, 64), input.labels, input.groups, FPRS);
  for (const extra of [{}, BOUNDED]) {
    const got = await evaluatePairs(input, { fpr: FPRS, blockSize: 64, ...extra });
    assert.deepEqual(got.subsets, want);
    assert.deepEqual(got.pairs, { genuine: want.all!.genuine, impostor: want.all!.impostor });
  }
});

test("planted ties: exact scores, equal to an independent float64 reference", async () => {
  // Unit vectors with entries in {0, ±1/2, ±1}: every dot product is exact in float32,
  // so the score set has massive ties and needs no shared GEMM to compare against.
  const rnd = lcg(5);
  const palette: number[][] = [];
  for (let m = 0; m < 16; m++) palette.push([0, 1, 2, 3].map((b) => ((m >> b) & 1 ? 0.5 : -0.5)));
  for (let d = 0; d < 4; d++)
    for (const s of [1, -1]) palette.push([0, 1, 2, 3].map((e) => (e === d ? s : 0)));
  const n = 150;
  const rows = Array.from({ length: n }, () => palette[Math.floor(rnd() * palette.length)]!);
  const labels = Array.from({ length: n }, () => Math.floor(rnd() * 12));
  const groups = Array.from({ length: n }, () => (rnd() < 0.5 ? 1 : 0));
  const embeddings = T.tensor(rows);
  const want = bruteForce(exactScores(rows), labels, groups, FPRS);
  for (const extra of [{}, BOUNDED])
    for (const blockSize of [16, 1000]) {
      const got = await evaluatePairs({ embeddings, labels, groups }, { fpr: FPRS, blockSize, ...extra });
      assert.deepEqual(got.subsets, want, `blockSize ${blockSize}`);
    }
});

test("tiny impostor counts, FPR below 1/n, and no impostors at all", async () => {
  const embeddings = T.tensor([
    [1, 0],
    [0.6, 0.8],
    [0, 1],
  ]);
  const labels = [4, 4, 9];
  const groups = [0, 1, 1];
  const fprs = ["1e-9", "0.5", "1"];
  const want = bruteForce(engineScores({ embeddings, labels, groups }, 2), labels, groups, fprs);
  for (const extra of [{}, BOUNDED]) {
    const got = await evaluatePairs({ embeddings, labels, groups }, { fpr: fprs, blockSize: 2, ...extra });
    assert.deepEqual(got.subsets, want);
  }
  assert.equal(want.all!.impostor, 2);
  // FPR below 1/n: k = 1, τ = the largest impostor score.
  assert.equal(want.all!.threshold["1e-9"], Math.fround(0.8));
  const same = await evaluatePairs({ embeddings, labels: [1, 1, 1] }, { fpr: fprs });
  assert.deepEqual(same.subsets.all, {
    genuine: 3,
    impostor: 0,
    tpr: { "1e-9": null, "0.5": null, "1": null },
    threshold: { "1e-9": null, "0.5": null, "1": null },
  });
});

test("one-group input and missing groups", async () => {
  const input = clustered(80, 10, 8, 3);
  const oneGroup = new Array<number>(80).fill(1);
  const want = bruteForce(engineScores({ ...input, groups: oneGroup }, 32), input.labels, oneGroup, FPRS);
  const got = await evaluatePairs({ ...input, groups: oneGroup }, { fpr: FPRS, blockSize: 32 });
  assert.deepEqual(got.subsets, want);
  assert.equal(got.subsets["masked-unmasked"]!.impostor, 0);
  assert.equal(got.subsets["masked-unmasked"]!.tpr["1e-7"], null);
  assert.deepEqual(got.subsets["masked-masked"], got.subsets.all);

  const noGroups = await evaluatePairs({ embeddings: input.embeddings, labels: input.labels }, { fpr: FPRS });
  assert.deepEqual(Object.keys(noGroups.subsets), ["all"]);
  assert.deepEqual(
    noGroups.subsets.all,
    bruteForce(
      engineScores({ embeddings: input.embeddings, labels: input.labels }, 2048),
      input.labels,
      undefined,
      FPRS,
    ).all,
  );
});

test("2 and 3 simulated ranks give the numbers of one process", async () => {
  const input = clustered(260, 25, 16, 9);
  for (const extra of [{}, BOUNDED]) {
    const opts: PairEvalOptions = {
      fpr: FPRS,
      blockSize: 48,
      rocSampleStride: 2,
      rocTailFpr: 0.01,
      ...extra,
    };
    const one = await evaluatePairs(input, opts);
    for (const world of [2, 3]) {
      const ranks = await Promise.all(
        simulatedGroup(world).map((collectives) => evaluatePairs(input, { ...opts, collectives })),
      );
      for (const r of ranks) {
        assert.deepEqual(r.subsets, one.subsets);
        assert.deepEqual(r.curves, one.curves);
      }
    }
  }
});

test("curves: TPR falls with FPR, and exact points agree with the headline numbers", async () => {
  const input = clustered(300, 30, 16, 4);
  const r = await evaluatePairs(input, { fpr: ["0.001", "0.01"], blockSize: 64, rocSampleStride: 1 });
  for (const [name, pts] of Object.entries(r.curves)) {
    assert.ok(pts.length > 0, name);
    for (let i = 1; i < pts.length; i++) assert.ok(pts[i]!.tpr >= pts[i - 1]!.tpr, `${name} monotone`);
    for (const key of ["0.001", "0.01"]) {
      const p = pts.find((q) => q.fpr === Number(key));
      assert.equal(p?.tpr, r.subsets[name as "all"]!.tpr[key]);
    }
  }
});

test("bad input is refused with the reason", async () => {
  const embeddings = T.tensor([
    [1, 0],
    [0, 1],
  ]);
  await assert.rejects(evaluatePairs({ embeddings, labels: [1] }), /labels has 1 entries/);
  await assert.rejects(evaluatePairs({ embeddings, labels: [1, 2], groups: [0, 2] }), /groups\[1\] is 2/);
  const nan = T.tensor([
    [NaN, 0],
    [0, 1],
  ]);
  await assert.rejects(evaluatePairs({ embeddings: nan, labels: [1, 2] }), /NaN/);
});
