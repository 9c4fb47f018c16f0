// `mfr train` as users run it, on inputs that used to train wrongly or stop silently: labels past
// head.numClasses, --resume with nothing to resume, damaged or edited checkpoints (the error names
// the intact one to resume from), metrics logged twice after a resume, temporary files a kill left;
// and the optim keys (LARS with ZeRO, linear scaling, multistep) through the command line.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { listCheckpoints } from "../../src/train/index.ts";
import { mfrSync, tinyTrainConfig } from "../helpers/mfr.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-train-cli-"));
const data = path.join(tmp, "data");

before(async () => {
  await synthesizeDataset({ out: data, identities: 5, imagesPerIdentity: 4, seed: 2 });
});

const steps = (file: string): number[] =>
  fs
    .readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { step: number }).step);

test("labels at or past head.numClasses stop training, naming the image and the config key", () => {
  const run = path.join(tmp, "labels");
  const r = mfrSync("train", tinyTrainConfig(tmp, data, run, { head: { numClasses: 3, margin: "cosface" } }));
  assert.notEqual(r.status, 0, r.stderr);
  assert.match(
    r.stderr,
    /00000[34]\/\d+\.jpg: label [34] is outside the head's 3 classes \(head\.numClasses = 3\)/,
  );
});

test("--resume with no checkpoint is an error naming the run's checkpoints folder", () => {
  const run = path.join(tmp, "fresh");
  const r = mfrSync("train", tinyTrainConfig(tmp, data, run), "--resume");
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    new RegExp(`--resume: ${path.join(run, "checkpoints")} holds no complete checkpoint`),
  );
  assert.ok(!fs.existsSync(path.join(run, "metrics.jsonl")), "nothing was trained");
});

test("resume: damaged and edited checkpoints are named, the intact one is offered; metrics stay one line per step", () => {
  const run = path.join(tmp, "resume");
  const cfg = tinyTrainConfig(tmp, data, run);
  const first = mfrSync("train", cfg);
  assert.equal(first.status, 0, first.stderr);
  const metrics = path.join(run, "metrics.jsonl");
  const logged = fs.readFileSync(metrics, "utf8").trim().split("\n");
  assert.deepEqual(steps(metrics), [1, 2, 3, 4]);
  const [two, four] = listCheckpoints(run).map((c) => c.dir);
  assert.ok(two && four);

  // A corrupt manifest, then an edited step: each named, nothing trained.
  const manifest = path.join(four, "manifest.json");
  const good = fs.readFileSync(manifest, "utf8");
  fs.writeFileSync(manifest, good.slice(0, 20));
  let r = mfrSync("train", cfg, "--resume");
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`${manifest}: not valid JSON`));
  assert.match(
    r.stderr,
    new RegExp(`the earlier checkpoint ${two} \\(step 2\\) is intact: resume from it with --resume ${two}`),
  );
  fs.writeFileSync(manifest, good.replace('"step": 4', '"step": 400'));
  r = mfrSync("train", cfg, "--resume");
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /"step" is 400 but the folder is step-00000004/);
  fs.writeFileSync(manifest, good);

  // A damaged newest file: the error names it and the intact checkpoint before it.
  const head = path.join(four, "head-rank0.safetensors");
  const bytes = fs.readFileSync(head);
  bytes[bytes.length - 1] = bytes.at(-1)! ^ 0xff;
  fs.writeFileSync(head, bytes);
  r = mfrSync("train", cfg, "--resume");
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`${head}: checksum mismatch`));
  assert.match(r.stderr, new RegExp(`--resume ${two}`));
  assert.deepEqual(steps(metrics), [1, 2, 3, 4], "a refused resume leaves the metrics as they were");

  // What a kill mid-write leaves, and a user's file that only looks similar.
  const stale = [
    path.join(run, ".metrics.jsonl.tmp-4242-abc123"),
    path.join(two, ".manifest.json.tmp-7-zz9"),
  ];
  for (const f of stale) fs.writeFileSync(f, "partial");
  const mine = path.join(run, "notes.tmp-1-a");
  fs.writeFileSync(mine, "keep me");

  // Following the advice resumes from step 2: steps 3 and 4 are logged once, as before.
  r = mfrSync("train", cfg, "--resume", two);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /steps 2\.\.4 \(resumed\)/);
  const again = fs.readFileSync(metrics, "utf8").trim().split("\n");
  assert.deepEqual(steps(metrics), [1, 2, 3, 4]);
  const loss = (l: string): number => (JSON.parse(l) as { loss: number }).loss;
  assert.deepEqual(again.map(loss), logged.map(loss), "the resumed steps repeat the same losses");
  for (const f of stale) assert.ok(!fs.existsSync(f), `${f} removed`);
  assert.equal(fs.readFileSync(mine, "utf8"), "keep me");
  // The rewritten step 4 checkpoint is whole again.
  r = mfrSync("train", cfg, "--resume", "--set", "steps=5");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /steps 4\.\.5 \(resumed\)/);
});

test("a checkpoint past the schedule's end is refused, naming the config key", () => {
  const run = path.join(tmp, "resume");
  const r = mfrSync("train", tinyTrainConfig(tmp, data, run, { steps: 3 }), "--resume");
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /step-00000005: step 5 is past the schedule's end \(steps = 3\)/);
});

test("LARS with ZeRO, linear scaling and multistep decay train; the rate used is printed and logged", () => {
  const run = path.join(tmp, "lars");
  const optim = {
    name: "lars",
    lr: 0.4,
    referenceBatch: 16,
    warmupSteps: 2,
    decay: { name: "multistep", milestones: [3], gamma: 0.5 },
  };
  const cfg = tinyTrainConfig(tmp, data, run, { optim, train: { zero: 1 }, checkpointEvery: 0 });
  const r = mfrSync("train", cfg);
  assert.equal(r.status, 0, r.stderr);
  // One rank of batch 4: 0.4 × 4 / 16 = 0.1; warm-up 0.05, 0.1; × 0.5 from step index 3.
  assert.match(r.stderr, /lr 0\.1 \(optim\.lr 0\.4 × global batch 4 \/ optim\.referenceBatch 16\)/);
  const logged = fs
    .readFileSync(path.join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { lr: number; loss: number });
  assert.deepEqual(
    logged.map((m) => m.lr),
    [0.05, 0.1, 0.1, 0.05],
  );
  assert.ok(logged.every((m) => Number.isFinite(m.loss)));
  // --print-config gives the rate a run on K ranks would use.
  const plan = mfrSync("train", cfg, "--print-config", "--world-size", "8");
  assert.equal(plan.status, 0, plan.stderr);
  assert.match(plan.stdout, /lars learning rate at 8 rank\(s\): 0\.8\n/);
});
