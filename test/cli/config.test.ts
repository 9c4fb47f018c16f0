// Config files as users write them, anywhere on disk, loaded through `node bin/mfr.js train`.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { synthesizeDataset } from "../../src/data/index.ts";
import { mfr, root } from "../helpers/mfr.ts";

const data = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-config-data-"));
before(async () => {
  await synthesizeDataset({ out: data, identities: 4, imagesPerIdentity: 2, seed: 2 });
});

/** A fresh folder outside the repository (no package.json above it) holding the given files. */
function userDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-user-"));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

const tiny = (runDir: string): string =>
  JSON.stringify({
    runDir,
    data: { path: data, batchSize: 4, workers: 1 },
    model: { backbone: "[1,1,1,1]", width: 0.125, embeddingSize: 16 },
    head: { margin: "cosface" },
    optim: { lr: 0.05, warmupSteps: 1 },
    dist: {},
    steps: 2,
  });

test("a config outside the repository, importing defineConfig and a sibling, with top-level await", async () => {
  const configTs = pathToFileURL(path.join(root, "src/train/config.ts")).href;
  const dir = userDir({
    "base.ts": `export const base = ${tiny("RUN")};\n`,
    "my.ts": [
      `import { defineConfig } from ${JSON.stringify(configTs)};`,
      `import { base } from "./base.ts";`,
      `const steps: number = await Promise.resolve(2);`,
      `export default defineConfig({ ...base, runDir: new URL("run", import.meta.url).pathname, steps });`,
    ].join("\n"),
  });
  const r = await mfr(["train", path.join(dir, "my.ts")]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(dir, "run/metrics.jsonl"), "utf8").trim().split("\n").length, 2);
});

test("a config outside the repository that just exports an object", async () => {
  const dir = userDir({ "plain.ts": `export default ${tiny("RUN")};\n` });
  const run = path.join(dir, "run");
  const r = await mfr(["train", path.join(dir, "plain.ts"), "--set", `runDir=${run}`, "--set", "steps=1"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(run, "metrics.jsonl"), "utf8").trim().split("\n").length, 1);
});

test("a config whose top-level await never settles is an error naming the file", async () => {
  const dir = userDir({ "hang.ts": "await new Promise(() => {});\nexport default {};\n" });
  const r = await mfr(["train", path.join(dir, "hang.ts")]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /hang\.ts: the module never finished loading \(a top-level await that never settles\)/,
  );
});

test("a config exporting a function is an error saying what is expected", async () => {
  const dir = userDir({ "fn.ts": "export default () => ({ steps: 1 });\n" });
  const r = await mfr(["train", path.join(dir, "fn.ts")]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /fn\.ts: the default export is a function; a config module must export the config object itself: export default defineConfig\(\{\.\.\.\}\)/,
  );
});

test("a config path that does not exist is an error naming that path, not mfr's own files", async () => {
  const missing = path.join(userDir({}), "typo.ts");
  const r = await mfr(["train", missing]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), `mfr: config ${missing}: no such file`);
});
