import { test } from "node:test";
import assert from "node:assert/strict";
import { KeyedPermutation, ShardedSampler, type SamplerOptions } from "../../src/data/sampler.ts";

const ranks = (o: Omit<SamplerOptions, "rank">): ShardedSampler[] =>
  Array.from({ length: o.worldSize ?? 1 }, (_, rank) => new ShardedSampler({ ...o, rank }));

const configs: Omit<SamplerOptions, "rank" | "length" | "tail">[] = [
  { batchSize: 4, worldSize: 3, seed: 1 },
  { batchSize: 5, worldSize: 2, seed: 2, chunkSize: 7, shuffleBuffer: 9 },
  { batchSize: 3, worldSize: 4, seed: 3, shuffle: false },
];

test("sharding covers each index exactly once per epoch across ranks", () => {
  for (const c of configs) {
    const n = c.batchSize * (c.worldSize ?? 1) * 6; // divisible: neither drop nor pad changes anything
    for (const tail of ["drop", "pad"] as const)
      for (const epoch of [0, 1]) {
        const seen = new Int32Array(n);
        for (const s of ranks({ ...c, length: n, tail })) for (const i of s.epochIndices(epoch)) seen[i]!++;
        assert.ok(
          seen.every((v) => v === 1),
          `${JSON.stringify(c)} ${tail} epoch ${epoch}`,
        );
      }
  }
});

test("a ragged tail is dropped or padded the same way on every rank", () => {
  for (const c of configs) {
    const n = c.batchSize * (c.worldSize ?? 1) * 5 + 2;
    for (const tail of ["drop", "pad"] as const) {
      const all = ranks({ ...c, length: n, tail });
      const counts = all.map((s) => [...s.batches(0)].length);
      assert.ok(
        counts.every((k) => k === counts[0]),
        "same number of batches on every rank",
      );
      const seen = new Int32Array(n);
      for (const s of all) for (const i of s.epochIndices(0)) seen[i]!++;
      const global = c.batchSize * (c.worldSize ?? 1);
      if (tail === "drop") {
        assert.ok(seen.every((v) => v <= 1));
        assert.equal(n - seen.reduce((a, b) => a + b, 0), n % global);
      } else {
        assert.ok(seen.every((v) => v >= 1 && v <= 2));
        assert.equal(
          seen.reduce((a, b) => a + b, 0),
          Math.ceil(n / global) * global,
        );
      }
    }
  }
});

test("the order depends on seed and epoch only, and resuming from a step reproduces the rest", () => {
  const o = { length: 101, batchSize: 4, worldSize: 2, rank: 1, seed: 5, chunkSize: 3, shuffleBuffer: 8 };
  const a = new ShardedSampler(o);
  const b = new ShardedSampler(o);
  assert.deepEqual(a.epochIndices(3), b.epochIndices(3));
  assert.notDeepEqual(a.epochIndices(3), a.epochIndices(4));
  assert.notDeepEqual(a.epochIndices(3), new ShardedSampler({ ...o, seed: 6 }).epochIndices(3));
  const full = [...a.batches(2)].map((x) => [...x]);
  const resumed = [...b.batches(2, 7)].map((x) => [...x]);
  assert.deepEqual(resumed, full.slice(7));
  assert.deepEqual(a.position(a.batchesPerEpoch * 2 + 7), { epoch: 2, step: 7 });
});

test("chunked order reads mostly sequentially", () => {
  const s = new ShardedSampler({ length: 10000, batchSize: 10, seed: 1, chunkSize: 500 });
  const order = s.epochIndices(0);
  let jumps = 0;
  for (let i = 1; i < order.length; i++) if (order[i] !== order[i - 1]! + 1) jumps++;
  assert.ok(jumps < 25, `${jumps} jumps`);
  const full = new ShardedSampler({ length: 10000, batchSize: 10, seed: 1 }).epochIndices(0);
  assert.notDeepEqual(order, full);
});

test("bad configurations name the key", () => {
  assert.throws(
    () => new ShardedSampler({ length: 10, batchSize: 4, worldSize: 3 }),
    /set data\.batchSize to at most 3/,
  );
  assert.throws(
    () => new ShardedSampler({ length: 10, batchSize: 2, worldSize: 2, rank: 2 }),
    /sampler.rank/,
  );
  assert.throws(() => new ShardedSampler({ length: 10, batchSize: 0 }), /sampler.batchSize/);
});

test("the keyed permutation is a bijection with its inverse, and the key changes it", () => {
  for (const n of [1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1000, 4097]) {
    const p = new KeyedPermutation(n, 12345);
    const seen = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = p.at(i);
      assert.ok(v >= 0 && v < n && seen[v] === 0, `n ${n}: at(${i}) = ${v}`);
      seen[v] = 1;
      assert.equal(p.indexOf(v), i);
    }
  }
  const a = Array.from({ length: 50 }, (_, i) => new KeyedPermutation(1000, 1).at(i));
  const b = Array.from({ length: 50 }, (_, i) => new KeyedPermutation(1000, 2).at(i));
  assert.notDeepEqual(a, b);
  // Not the identity, nor a shift: neighbours land far apart.
  const gaps = a.slice(1).map((v, i) => Math.abs(v - a[i]!));
  assert.ok(gaps.filter((g) => g > 10).length > 40, `gaps ${gaps.join(",")}`);
});

test("a rank's epoch order over 2^31 - 1 samples costs its own slice only", { timeout: 20_000 }, () => {
  // A permutation of the whole dataset would be an 8 GiB array shuffled 2^31 times.
  const o = { length: 2 ** 31 - 1, batchSize: 64, worldSize: 2 ** 20, seed: 9 };
  const r0 = new ShardedSampler({ ...o, rank: 0 }).epochIndices(1);
  const r1 = new ShardedSampler({ ...o, rank: o.worldSize - 1 }).epochIndices(1);
  assert.equal(r0.length, Math.floor(o.length / (64 * 2 ** 20)) * 64);
  const all = new Set([...r0, ...r1]);
  assert.equal(all.size, r0.length + r1.length, "no index twice, within or across ranks");
  for (const i of all) assert.ok(i >= 0 && i < o.length);
  assert.ok(Math.max(...r0) > o.length / 2, "indices spread over the whole dataset");
});
