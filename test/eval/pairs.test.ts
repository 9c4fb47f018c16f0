import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { type PairEvalOptions, evaluatePairs, prepareLayout } from "../../src/eval/pairs.ts";
import { groupSubset } from "../../src/eval/layout.ts";
import { emptyHistograms, sampleTile } from "../../src/eval/sample.ts";
import { PairScorer } from "../../src/eval/scorer.ts";
import { simulatedGroup } from "../helpers/collectives.ts";
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

// FPRs whose largest k (and the tail kept for the curves) is a small part of the impostors, so
// that the sample pass runs and the score pass keeps only what lies above a floor.
const LOW = ["1e-4", "1e-3", "0.01"];

test("guessed floors: the score pass keeps only scores above them, and the results are exact", async () => {
  const input = clustered(700, 50, 16, 11);
  const want = bruteForce(engineScores(input, 64), input.labels, input.groups, LOW);
  const opts: PairEvalOptions = { fpr: LOW, blockSize: 64, rocSampleStride: 2, rocTailFpr: 0.002 };
  const got = await evaluatePairs(input, opts);
  assert.deepEqual(got.subsets, want);
  assert.deepEqual(got.info.passes, ["sample", "score"]);
  for (const [name, floor] of Object.entries(got.info.floors)) {
    assert.ok(typeof floor === "number", `${name} has a floor`);
    // Below the K-th largest impostor (K = 1% of them here), but not far below.
    const kth = want[name as "all"]!.threshold["0.01"]!;
    assert.ok(floor < kth && floor > kth - 0.2, `${name}: floor ${floor}, K-th ${kth}`);
  }
  const ranks = await Promise.all(
    simulatedGroup(2).map((collectives) => evaluatePairs(input, { ...opts, collectives })),
  );
  for (const r of ranks) {
    assert.deepEqual(r.subsets, got.subsets);
    assert.deepEqual(r.curves, got.curves);
  }
});

test("a floor above the K-th largest impostor falls back to a tail pass, exactly, on 1 and 2 ranks", async () => {
  const input = clustered(500, 40, 16, 12);
  const want = bruteForce(engineScores(input, 64), input.labels, input.groups, LOW);
  const base: PairEvalOptions = { fpr: LOW, blockSize: 64, rocSampleStride: 3, rocTailFpr: 0 };
  const guessed = await evaluatePairs(input, base);
  // Too high everywhere (nothing above), too high for some subsets only (the 1e-3 threshold keeps
  // about a tenth of the K = 1% asked for), and exactly at a score (ties at the floor stay out).
  const floors: PairEvalOptions["tailFloors"][] = [
    { all: 2, "masked-unmasked": 2, "masked-masked": 2, "unmasked-unmasked": 2 },
    { all: want.all!.threshold["1e-3"]!, "masked-masked": want["masked-masked"]!.threshold["1e-3"]! },
    { "unmasked-unmasked": want["unmasked-unmasked"]!.threshold["0.01"]! },
  ];
  for (const tailFloors of floors) {
    const one = await evaluatePairs(input, { ...base, tailFloors });
    assert.deepEqual(one.subsets, want, JSON.stringify(tailFloors));
    assert.deepEqual(one.curves, guessed.curves, JSON.stringify(tailFloors));
    assert.ok(
      one.info.passes.includes("tail"),
      `${JSON.stringify(tailFloors)}: ${one.info.passes.join(",")}`,
    );
    const ranks = await Promise.all(
      simulatedGroup(2).map((collectives) => evaluatePairs(input, { ...base, tailFloors, collectives })),
    );
    for (const r of ranks) {
      assert.deepEqual(r.subsets, want);
      assert.deepEqual(r.curves, guessed.curves);
    }
  }
});

test("the sample pass histograms exactly the impostor pairs (i, j > i) of every stride-th row", () => {
  const input = clustered(230, 20, 8, 13);
  for (const [groups, stride, blockSize] of [
    [input.groups, 1, 32],
    [input.groups, 3, 40],
    [undefined, 5, 64],
  ] as const) {
    const layout = prepareLayout({ ...input, groups }, blockSize);
    const scorer = new PairScorer(input.embeddings, layout, "onednn", stride);
    const sources = groups
      ? (["masked-unmasked", "masked-masked", "unmasked-unmasked"] as const)
      : (["all"] as const);
    const hists = emptyHistograms(sources);
    for (const tile of layout.tiles) T.scope(() => sampleTile(scorer, layout, tile, hists));
    scorer.dispose();
    // Layout positions p < q with p sampled (every stride-th row of its tile), different labels.
    const want = new Map<string, number>();
    const tileOf = (p: number) => layout.tiles.find((t) => t.start <= p && p < t.end)!;
    const g = (p: number) => (groups ? groups[layout.order[p]!]! : 0);
    for (let p = 0; p < layout.n; p++) {
      if ((p - tileOf(p).start) % stride !== 0) continue;
      for (let q = p + 1; q < layout.n; q++) {
        if (input.labels[layout.order[p]!] === input.labels[layout.order[q]!]) continue;
        const name = groups ? groupSubset(g(p), g(q)) : "all";
        want.set(name, (want.get(name) ?? 0) + 1);
      }
    }
    for (const name of sources) {
      const total = hists.get(name)!.reduce((a, b) => a + b, 0);
      assert.equal(total, want.get(name) ?? 0, `${name}, stride ${stride}`);
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
  // Row sums that overflow float16 (the quick check) send it to the exact check: finite, accepted.
  const big = T.tensor([
    [60000, 60000],
    [60000, -1],
  ]).to("f16");
  assert.equal((await evaluatePairs({ embeddings: big, labels: [1, 2] }, { fpr: ["1"] })).pairs.impostor, 1);
  const inf = T.tensor([
    [1, 0],
    [Infinity, -Infinity],
  ]);
  await assert.rejects(evaluatePairs({ embeddings: inf, labels: [1, 2] }), /infinite/);
});
