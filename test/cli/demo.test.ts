// `mfr demo` at a tiny size, started as the README says: every stage of the recipe runs as the
// mfr command it prints (teacher, distilled student on 2 ranks with every memory switch on, ONNX
// export with the rules check, MFR evaluation of each model) and the closing table and report
// come from those runs' own files. The size of the real demo is measured in bench, not here.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { RunInfo } from "../../src/train/index.ts";
import { mfr } from "../helpers/mfr.ts";

const tiny = [
  "--identities",
  "8",
  "--images",
  "8",
  "--held-out",
  "6",
  "--steps",
  "3",
  "--teacher-steps",
  "3",
];

test("mfr demo runs the whole recipe and reports figures from its own runs", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-demo-"));
  const r = await mfr(["demo", "--dir", dir, "--scratch", ...tiny]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  // Each stage prints the command it runs, and they are the recipe's, in order.
  const commands = [...r.stdout.matchAll(/^\$ mfr (\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(commands, [
    "synth",
    "synth",
    "mask",
    "launch",
    "launch",
    "launch",
    "export",
    "eval",
    "eval",
    "eval",
  ]);
  assert.match(
    r.stdout,
    /\$ mfr launch --nproc-per-node 2 -- train configs\/demo\.ts .*--set distill\.teacher=/,
  );

  const run = (name: string): RunInfo =>
    JSON.parse(fs.readFileSync(path.join(dir, name, "run.json"), "utf8"));
  const student = run("student");
  assert.equal(student.worldSize, 2);
  assert.deepEqual(student.config.train, {
    ...student.config.train,
    microBatches: 2,
    checkpoint: "stage",
    amp: "bf16",
    zero: 1,
  });
  assert.ok(student.config.head.sampleRate < 1, "the head samples classes");
  assert.equal(student.config.distill?.lambda, 9);
  assert.equal(run("scratch").config.distill, undefined);
  // The student's loss has its distillation part; the scratch student's has none.
  const last = (name: string): Record<string, number> =>
    fs
      .readFileSync(path.join(dir, name, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, number>)
      .filter((m) => m.type === undefined)
      .at(-1)!;
  assert.ok(Number.isFinite(last("student").distill), "distill logged");
  assert.equal(last("scratch").distill, undefined);

  // The exported student passed the rules and was evaluated as deployed, on all four subsets.
  assert.match(r.stdout, /bn\s+folded: \d+ -> \d+ BatchNorm layers/);
  assert.match(r.stdout, /check-mfr:/);
  assert.ok(fs.statSync(path.join(dir, "student", "model.onnx")).size > 0);
  const result = JSON.parse(fs.readFileSync(path.join(dir, "student", "eval", "result.json"), "utf8"));
  assert.deepEqual(Object.keys(result.subsets).sort(), [
    "all",
    "masked-masked",
    "masked-unmasked",
    "unmasked-unmasked",
  ]);
  // The closing table holds the evaluations' figures: the student's masked-unmasked TPR@1e-3.
  const mu = result.subsets["masked-unmasked"].tpr["1e-3"] as number;
  const row = r.stdout.split("\n").find((l) => l.startsWith("student distilled (ONNX)"));
  assert.ok(row, r.stdout);
  assert.equal(row.trim().split(/\s+/).at(-8), mu.toFixed(3), row);
  for (const name of ["teacher", "scratch", "student"])
    assert.ok(fs.existsSync(path.join(dir, name, "report.html")), `${name}/report.html`);
  assert.match(r.stdout, new RegExp(`report: ${path.join(dir, "student", "report.html")}`));
});

test("mfr demo names the command that failed, with the cause, and stops there", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-demo-bad-"));
  // 2 identities x 2 photos: fewer images than one global batch of the teacher's config.
  const r = await mfr(["demo", "--dir", dir, ...tiny, "--identities", "2", "--images", "2"]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /4 samples make no full batch of 32 x 2 ranks/);
  assert.match(
    r.stderr,
    /mfr: demo: `mfr launch --nproc-per-node 2 -- train configs\/demo_teacher\.ts .*` exited with 1/,
  );
  assert.ok(!fs.existsSync(path.join(dir, "student")), "nothing after the failed stage ran");
});
