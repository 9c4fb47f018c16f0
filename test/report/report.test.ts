// report.html of a run, as users get it: written by `mfr eval --report RUN_DIR/eval` into the run
// folder, opened in headless Chromium offline: no console error, no request leaving the machine,
// and every chart drawn with marks (one line per series), for training curves with distillation
// parts and loss scaling, verification records of two sets, and ROC/DET of a real evaluation.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import * as T from "../../src/torch/index.ts";
import { mfr } from "../helpers/mfr.ts";
import { closeBrowser, openPage } from "../helpers/browser.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-report-"));
const run = path.join(tmp, "run");
const STEPS = 40;

/** A run folder as the trainer leaves it: step records (CE and distillation parts, loss scale) and verification records. */
function writeRun(): void {
  fs.mkdirSync(run, { recursive: true });
  const lines: object[] = [];
  const verify = (step: number, t: number): void => {
    lines.push({
      type: "verify",
      step,
      set: "lfw",
      protocol: "bin",
      results: { accuracy: 0.6 + 0.3 * t, std: 0.01, xnorm: 20 },
      pairs: 6000,
      seconds: 1,
    });
    lines.push({
      type: "verify",
      step,
      set: "held-out",
      protocol: "mfr",
      results: { "masked-unmasked@1e-3": 0.2 + 0.3 * t, "all@1e-3": 0.3 + 0.3 * t },
      pairs: 1e5,
      seconds: 2,
    });
  };
  verify(0, 0);
  for (let step = 1; step <= STEPS; step++) {
    const ce = 20 * Math.exp(-step / 15) + 2;
    const distill = 0.5 * Math.exp(-step / 10);
    lines.push({
      step,
      loss: ce + 5 * distill,
      ce,
      distill,
      lr: 0.1 * Math.min(1, step / 5) * (1 - step / (STEPS + 1)),
      imagesPerSec: 300 + (step % 7),
      rssMB: 900,
      epoch: 0,
      lossScale: step === 12 ? 32768 : 65536,
      skipped: step === 12,
    });
    if (step % 20 === 0) verify(step, step / STEPS);
  }
  fs.writeFileSync(path.join(run, "metrics.jsonl"), lines.map((l) => JSON.stringify(l) + "\n").join(""));
}

/** Embeddings, labels and mask groups of 60 images of 12 identities (each masked and not), for mfr eval. */
function writeEmbeddings(): string[] {
  T.manualSeed(5);
  const n = 60;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 12);
  const centres = T.randn([12, 16]);
  const emb = centres.indexSelect(0, T.tensor(labels).to("i64")).add(T.randn([n, 16]).mul(0.8));
  const file = (name: string): string => path.join(tmp, name);
  T.saveNpy(file("e.npy"), emb);
  T.saveNpy(file("l.npy"), T.tensor(labels).to("i64"));
  T.saveNpy(file("g.npy"), T.tensor(Uint8Array.from({ length: n }, (_, i) => Math.floor(i / 12) % 2)));
  return ["--embeddings", file("e.npy"), "--labels", file("l.npy"), "--groups", file("g.npy")];
}

before(writeRun);
after(closeBrowser);

test("mfr eval into a run folder rebuilds its report.html; Chromium draws every chart with marks, offline, without errors", async () => {
  const [evaluated, notRun] = await Promise.all([
    mfr(["eval", ...writeEmbeddings(), "--fpr", "1e-2,1e-1", "--report", path.join(run, "eval")]),
    mfr(["report", tmp]),
  ]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  assert.match(evaluated.stdout, new RegExp(`run report: ${path.join(run, "report.html")}`));
  assert.equal(notRun.code, 1);
  assert.equal(notRun.stderr, `mfr: ${tmp}: not a run folder (no metrics.jsonl or run.json)\n`);

  const html = fs.readFileSync(path.join(run, "report.html"), "utf8");
  assert.doesNotMatch(
    html,
    /<script|\bsrc=|https?:\/\/(?!www\.w3\.org)/,
    "one file, no script, no external resource",
  );

  const { page, problems, close } = await openPage(pathToFileURL(path.join(run, "report.html")).href);
  try {
    const charts = await page.$$eval("figure.chart", (figs) =>
      figs.map((f) => {
        const marks = [...f.querySelectorAll(".role-mark path")].filter(
          (p) => (p.getAttribute("d") ?? "").length > 10,
        );
        const box = f.querySelector("svg")!.getBoundingClientRect();
        return {
          title: f.getAttribute("data-title"),
          lines: f.querySelectorAll(".mark-line.role-mark path").length,
          marks: marks.length,
          drawn: marks.filter((p) => (p as unknown as { getBBox(): { width: number } }).getBBox().width > 0)
            .length,
          width: box.width,
        };
      }),
    );
    assert.deepEqual(
      charts.map((c) => c.title),
      [
        "Loss, margin CE and distillation",
        "Learning rate",
        "Throughput",
        "Loss scale",
        "Verification: lfw",
        "Verification: held-out",
        "ROC (eval)",
        "DET (eval)",
      ],
    );
    for (const c of charts) {
      assert.ok(c.width > 100, `${c.title}: ${c.width} px wide`);
      assert.ok(c.marks > 0 && c.drawn === c.marks, `${c.title}: ${c.drawn} of ${c.marks} marks drawn`);
    }
    const lines = Object.fromEntries(charts.map((c) => [c.title, c.lines]));
    assert.equal(lines["Loss, margin CE and distillation"], 3, "loss, CE and distillation");
    assert.equal(lines["Verification: lfw"], 1, "accuracy only (std and xnorm are other scales)");
    assert.equal(lines["Verification: held-out"], 2);
    assert.equal(lines["ROC (eval)"], 4, "all, masked-unmasked, masked-masked, unmasked-unmasked");
    const text = await page.$eval("body", (b) => b.innerText);
    assert.match(text, /Steps 1–40 logged/);
    assert.match(text, /masked-unmasked/);
    assert.match(text, new RegExp(`libtorch\\s+${T.buildInfo().torchVersion.replaceAll(".", "\\.")}`));
    assert.deepEqual(problems, []);
    if (process.env.MFR_REPORT_SCREENSHOT)
      await page.screenshot({ path: process.env.MFR_REPORT_SCREENSHOT, fullPage: true });
  } finally {
    await close();
  }
});
