// `mfr launch` started the way the README tells users to (node bin/mfr.js …): ranks must come up
// with the TypeScript loader although the launcher registered it in-process.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { mfr } from "../helpers/mfr.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-launch-"));
const data = path.join(tmp, "data");

before(async () => {
  await synthesizeDataset({ out: data, identities: 6, imagesPerIdentity: 4, seed: 1 });
});

test("mfr launch runs an mfr subcommand on one rank", async () => {
  const r = await mfr(["launch", "--nproc-per-node", "1", "--", "models"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /mobilefacenet/);
});

test("mfr launch trains configs/demo.ts on two ranks", async () => {
  const runDir = path.join(tmp, "run");
  const sets = {
    runDir,
    "data.path": data,
    "data.batchSize": 4,
    "data.workers": 1,
    "model.width": 0.125,
    "model.embeddingSize": 16,
    "optim.warmupSteps": 1,
    steps: 3,
    logEvery: 1,
    checkpointEvery: 0,
    verifyEvery: 0,
  };
  const r = await mfr([
    ...["launch", "--nproc-per-node", "2", "--", "train", "configs/demo.ts"],
    ...Object.entries(sets).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /mfr train: 2 rank\(s\), 6 classes/);
  // Only rank 0 logs: one line per step.
  assert.equal(r.stderr.match(/^step \d+ loss/gm)?.length, 3, r.stderr);
  const metrics = fs.readFileSync(path.join(runDir, "metrics.jsonl"), "utf8").trim().split("\n");
  assert.equal(metrics.length, 3);
});

/** A user's TypeScript script in a folder of its own, outside the repository. */
function userScript(name: string, text: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "mfr-script-")), name);
  fs.writeFileSync(file, text);
  return file;
}

const printRank = userScript(
  "rank.ts",
  'const env: NodeJS.ProcessEnv = process.env;\nconsole.log(`rank ${env.RANK}/${env.WORLD_SIZE} args ${process.argv.slice(2).join(",")}`);\n',
);

test("mfr launch runs a user's TypeScript script on two ranks, with or without `node`", async () => {
  for (const command of [["node", printRank], [printRank]]) {
    const r = await mfr(["launch", "--nproc-per-node", "2", "--", ...command, "a", "b"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n").sort(), ["rank 0/2 args a,b", "rank 1/2 args a,b"]);
  }
});

test("mfr launch runs any executable, and names one that cannot start", async () => {
  const r = await mfr(["launch", "--nproc-per-node", "2", "--", "sh", "-c", 'echo "sh $RANK/$WORLD_SIZE"']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n").sort(), ["sh 0/2", "sh 1/2"]);
  const bad = await mfr(["launch", "--nproc-per-node", "2", "--", "no-such-program-here"]);
  assert.equal(bad.code, 127);
  assert.match(bad.stderr, /could not start no-such-program-here: spawn no-such-program-here ENOENT/);
});
