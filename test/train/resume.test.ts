// Checkpoints end to end: a run SIGKILLed mid-way and resumed gives bit-identical losses to an
// uninterrupted one; a head saved by 3 ranks resumes on 2 (and on 1, exactly); a rank killed in
// a 3-rank run ends the whole run within the timeout, naming the rank.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { launch } from "../../src/distributed/index.ts";
import { synthesizeDataset } from "../../src/data/index.ts";
import * as T from "../../src/torch/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { PartialFC } from "../../src/head/index.ts";
import { SGD, ZeroOptimizer } from "../../src/optim/index.ts";
import { buildBackbone } from "../../src/models/index.ts";
import { listCheckpoints, loadHeadShard } from "../../src/train/index.ts";
import { runRanks } from "../helpers/ranks.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const worker = path.join(here, "worker-train.ts");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-train-"));
const data = path.join(tmp, "data");
type Losses = { step: number; loss: number }[];

before(async () => {
  await synthesizeDataset({ out: data, identities: 10, imagesPerIdentity: 4, seed: 1 });
});

function single(
  spec: object,
): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ["--import", "tsx", worker], {
      env: { ...process.env, MFR_NUM_THREADS: "1", TEST_TRAIN: JSON.stringify({ data, ...spec }) },
    });
    let out = "";
    let err = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.stderr.on("data", (d: Buffer) => (err += d.toString()));
    c.on("close", (code, signal) => resolve({ code, signal, out, err }));
  });
}
const lossesOf = (out: string): { startStep: number; losses: Losses } =>
  JSON.parse(out.split("\n").find((l) => l.startsWith("{"))!) as { startStep: number; losses: Losses };

test("resume after SIGKILL gives the same losses as an uninterrupted run", async () => {
  const a = path.join(tmp, "straight");
  const b = path.join(tmp, "killed");
  const straight = await single({ runDir: a, steps: 6, checkpointEvery: 0 });
  assert.equal(straight.code, 0, straight.err);
  const killed = await single({ runDir: b, steps: 6, checkpointEvery: 2, killAtStep: 3 });
  assert.equal(killed.signal, "SIGKILL");
  assert.deepEqual(
    listCheckpoints(b).map((c) => c.step),
    [2],
  );
  const resumed = await single({ runDir: b, steps: 6, checkpointEvery: 2, resume: true });
  assert.equal(resumed.code, 0, resumed.err);
  const r = lossesOf(resumed.out);
  assert.equal(r.startStep, 2);
  assert.deepEqual(r.losses, lossesOf(straight.out).losses.slice(2));
  // keepCheckpoints = 2
  assert.deepEqual(
    listCheckpoints(b).map((c) => c.step),
    [4, 6],
  );
});

test("a head saved by 3 ranks resumes on 2 ranks and on 1 (exact rows)", async () => {
  const run = path.join(tmp, "reshard");
  const three = await runRanks<{ losses: Losses }>(3, worker, {
    TEST_TRAIN: JSON.stringify({ runDir: run, data, steps: 5, stopAfter: 2, checkpointEvery: 2 }),
  });
  assert.equal(three.length, 3);
  const ckpt = listCheckpoints(run).at(-1)!;
  assert.equal(ckpt.step, 2);

  // 3 -> 1 in this process: the single shard is the three saved shards end to end, momentum too.
  T.scope(() => {
    const shards = [0, 1, 2].map(
      (r) => T.loadSafetensors(path.join(ckpt.dir, `head-rank${r}.safetensors`)).tensors,
    );
    const head = new PartialFC(ProcessGroup.single(), {
      numClasses: 10,
      embeddingSize: 16,
      sampleRate: 1,
      margin: { s: 64, m3: 0.4 },
    });
    const headOpt = new SGD([head.weight], { lr: 0.1, momentum: 0.9 });
    loadHeadShard(ckpt.dir, 3, head, headOpt);
    const want = T.cat(shards.map((s) => s.get("weight")!));
    assert.equal(head.weight.sub(want).abs().max().item(), 0);
    const momentum = headOpt.stateDict().tensors.get("0.momentum_buffer")!;
    assert.equal(
      momentum
        .sub(T.cat(shards.map((s) => s.get("optim.0.momentum_buffer")!)))
        .abs()
        .max()
        .item(),
      0,
    );
    head.dispose();
  });

  const two = await runRanks<{ startStep: number; losses: Losses }>(2, worker, {
    TEST_TRAIN: JSON.stringify({ runDir: run, data, steps: 5, checkpointEvery: 5, resume: true }),
  });
  assert.equal(two.length, 2);
  for (const l of two) {
    assert.equal(l.startStep, 2);
    assert.deepEqual(
      l.losses.map((x) => x.step),
      [3, 4, 5],
    );
    assert.ok(l.losses.every((x) => Number.isFinite(x.loss)));
  }
  assert.deepEqual(two[0]!.losses, two[1]!.losses);
  const last = listCheckpoints(run).at(-1)!;
  assert.equal(last.step, 5);
  assert.ok(fs.existsSync(path.join(last.dir, "head-rank1.safetensors")));
  assert.ok(!fs.existsSync(path.join(last.dir, "head-rank2.safetensors")));
});

test("a ZeRO-2 checkpoint of 2 ranks resumes on 2 (same losses) and on 1 rank (same state)", async () => {
  const zero2 = { zero: 2 as const, microBatches: 2 };
  const spec = (runDir: string, extra: object) =>
    JSON.stringify({ runDir, data, steps: 4, checkpointEvery: 2, train: zero2, ...extra });
  const straight = await runRanks<{ rank: number; losses: Losses }>(2, worker, {
    TEST_TRAIN: spec(path.join(tmp, "zero-straight"), { checkpointEvery: 0 }),
  });
  const run = path.join(tmp, "zero");
  await runRanks(2, worker, { TEST_TRAIN: spec(run, { stopAfter: 2 }) });
  const ckpt = listCheckpoints(run).at(-1)!;
  assert.equal(ckpt.step, 2);
  for (const r of [0, 1]) assert.ok(fs.existsSync(path.join(ckpt.dir, `backbone-zero-rank${r}.safetensors`)));

  // 2 -> 1 in this process: the single rank's state is the two saved pieces end to end, by range.
  T.scope(() => {
    const files = [0, 1].map((r) => {
      const source = path.join(ckpt.dir, `backbone-zero-rank${r}.safetensors`);
      return { source, ...T.loadSafetensors(source) };
    });
    const net = buildBackbone("[1,1,1,1]", { width: 0.125, numFeatures: 16 });
    const params = net.parameters().filter((p) => p.requiresGrad);
    const zero = new ZeroOptimizer(
      ProcessGroup.single(),
      [{ params }],
      (g) => new SGD(g, { lr: 0.1, momentum: 0.9 }),
      {
        stage: 2,
      },
    );
    zero.loadShardStates(files);
    const total = params.reduce((n, p) => n + p.numel, 0);
    const want = new Float32Array(total);
    for (const f of files) {
      const meta = JSON.parse(f.metadata["mfr.zero"]!) as { ranges: [number, number][] };
      meta.ranges.forEach(([a, z], j) => {
        if (z > a) want.set(f.tensors.get(`zero.${j}.momentum_buffer`)!.data() as Float32Array, a);
      });
    }
    const sd = zero.inner.stateDict();
    const got = T.cat(
      [...sd.tensors.entries()].filter(([k]) => k.endsWith("momentum_buffer")).map(([, t]) => t),
    );
    assert.equal(got.numel, total);
    assert.deepEqual(got.data(), want);
    assert.ok(Object.values(sd.steps).every((n) => n === 2));
    zero.dispose();
    net.dispose();
  });

  const two = await runRanks<{ rank: number; startStep: number; losses: Losses }>(2, worker, {
    TEST_TRAIN: spec(run, { resume: true }),
  });
  for (const l of two) {
    assert.equal(l.startStep, 2);
    assert.deepEqual(l.losses, straight.find((s) => s.rank === l.rank)!.losses.slice(2));
  }
  // ZeRO-1 on one rank continues from the 2-rank ZeRO-2 checkpoint (its own step 4 checkpoint
  // is written next to the 2-rank one, so resume from a copy of step 2 alone).
  const one = path.join(tmp, "zero-one");
  fs.cpSync(ckpt.dir, path.join(one, "checkpoints", path.basename(ckpt.dir)), { recursive: true });
  const single1 = await single({
    runDir: one,
    steps: 4,
    checkpointEvery: 2,
    resume: true,
    train: { zero: 1 },
  });
  assert.equal(single1.code, 0, single1.err);
  const r1 = lossesOf(single1.out);
  assert.equal(r1.startStep, 2);
  assert.deepEqual(
    r1.losses.map((x) => x.step),
    [3, 4],
  );
  assert.ok(r1.losses.every((x) => Number.isFinite(x.loss)));
  // Without ZeRO the sharded state cannot be read: a clear error names the setting.
  const plain = await single({ runDir: one, steps: 6, checkpointEvery: 2, resume: true });
  assert.notEqual(plain.code, 0);
  assert.match(plain.err, /saved with ZeRO; resume with train\.zero 1 or 2/);
});

test("SIGKILL of one rank in a 3-rank run ends the run within the timeout, naming the rank", async () => {
  const t0 = Date.now();
  const job = await launch({
    nprocPerNode: 3,
    argv: [worker],
    execArgv: ["--import", "tsx"],
    env: {
      ...process.env,
      MFR_NUM_THREADS: "1",
      TEST_TRAIN: JSON.stringify({
        runDir: path.join(tmp, "kill"),
        data,
        steps: 50,
        checkpointEvery: 0,
        killAtStep: 2,
        killRank: 1,
        timeoutS: 10,
      }),
    },
    stdio: "pipe",
  });
  for (const c of job.children) {
    c.stdout!.resume();
    c.stderr!.resume();
  }
  const r = await job.result;
  const seconds = (Date.now() - t0) / 1000;
  assert.notEqual(r.exitCode, 0);
  assert.match(r.message ?? "", /rank 1/);
  assert.ok(seconds < 40, `took ${seconds} s`);
});
