// The browser verification page as users get it: `mfr serve RUN_DIR` serves it, headless Chromium
// runs the run's exported ONNX in it (onnxruntime-web), and the embedding of a held-out face picked
// in the page equals `mfr embed`'s of the same file within 1e-4; the page's cosine and its decision
// at the evaluation's threshold follow from those embeddings.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import * as T from "../../src/torch/index.ts";
import { synthesizeDataset } from "../../src/data/index.ts";
import { saveBackboneCheckpoint } from "../../src/models/index.ts";
import { exportCheckpoint } from "../../src/export/index.ts";
import { mfr, startMfr } from "../helpers/mfr.ts";
import { closeBrowser, openPage } from "../helpers/browser.ts";
import { tinyBackbone } from "../export/helpers.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-web-"));
const run = path.join(tmp, "run");
const faces = [path.join(tmp, "a.png"), path.join(tmp, "b.png")];
const TAU = 0.25;

before(async () => {
  fs.mkdirSync(path.join(run, "eval"), { recursive: true });
  const m = tinyBackbone("[1,1,1,1]", 7);
  const ckpt = path.join(tmp, "backbone.safetensors");
  saveBackboneCheckpoint(ckpt, m);
  m.dispose();
  await exportCheckpoint({
    checkpoint: ckpt,
    out: path.join(run, "model.onnx"),
    foldBatchNorm: true,
    verify: false,
  });
  // Held-out faces as PNG: lossless, so the browser and mfr decode the same pixels.
  const held = path.join(tmp, "held");
  await synthesizeDataset({ out: held, identities: 2, imagesPerIdentity: 1, seed: 11 });
  const jpgs = fs
    .readdirSync(held, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".jpg"))
    .sort();
  for (const [i, out] of faces.entries()) await sharp(path.join(held, jpgs[i]!)).png().toFile(out);
  // An evaluation as mfr eval writes it: the page offers its thresholds.
  const subset = (tau: number) => ({
    genuine: 10,
    impostor: 90,
    tpr: { "1e-2": 0.5 },
    threshold: { "1e-2": tau },
  });
  fs.writeFileSync(
    path.join(run, "eval", "result.json"),
    JSON.stringify({
      pairs: { genuine: 10, impostor: 90 },
      subsets: { all: subset(0.5), "masked-unmasked": subset(TAU) },
    }),
  );
});
after(closeBrowser);

test("mfr serve: the page's embeddings equal mfr embed's within 1e-4, its decision uses the evaluation's threshold", async () => {
  const embedded = await Promise.all(
    faces.map(async (f) => {
      const out = f.replace(/\.png$/, ".npy");
      const r = await mfr(["embed", "--model", path.join(run, "model.onnx"), "--data", f, "--out", out]);
      assert.equal(r.code, 0, r.stderr);
      return T.scope(() => T.loadNpy(out).toArray() as number[]);
    }),
  );
  const server = startMfr(["serve", run, "--port", "0"]);
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      server.child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /open (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      void server.done.then((r) => reject(new Error(`mfr serve exited: ${r.stderr}`)));
    });
    const { page, problems, close } = await openPage(url);
    try {
      await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
      for (const [i, key] of ["a", "b"].entries()) {
        const input = await page.$(`#slot-${key} input[type=file]`);
        await input!.uploadFile(faces[i]!);
        await page.waitForSelector(`#slot-${key}[data-embedding]`, { timeout: 30_000 });
        const got = JSON.parse(
          (await page.$eval(`#slot-${key}`, (s) => s.getAttribute("data-embedding")))!,
        ) as number[];
        assert.equal(got.length, embedded[i]!.length);
        const diff = Math.max(...got.map((v, j) => Math.abs(v - embedded[i]![j]!)));
        assert.ok(diff <= 1e-4, `face ${key}: max |page - mfr embed| = ${diff}`);
      }
      const [a, b] = embedded as [number[], number[]];
      const dot = (x: number[], y: number[]): number => x.reduce((s, v, j) => s + v * y[j]!, 0);
      const cos = dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
      await page.waitForSelector("#result[data-cosine]");
      const shown = Number(await page.$eval("#result", (r) => r.getAttribute("data-cosine")));
      assert.ok(Math.abs(shown - cos) < 1e-4, `page cosine ${shown}, mfr ${cos}`);
      const option = await page.$eval(
        "#threshold",
        (s) =>
          (s as unknown as { selectedOptions: { textContent: string }[] }).selectedOptions[0]!.textContent,
      );
      assert.match(option, /FPR 1e-2 on masked-unmasked pairs \(τ = 0\.2500\)/);
      assert.equal(
        await page.$eval("#decision", (d) => d.textContent),
        cos > TAU ? "same person" : "different people",
      );
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  } finally {
    server.child.kill("SIGINT");
    await server.done;
  }
});
