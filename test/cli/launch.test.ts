// `mfr launch` started the way the README tells users to (node bin/mfr.js …): ranks must come up
// with the TypeScript loader although the launcher registered it in-process.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { heapEnv } from "../../src/torch/heap.ts";
import { mfr, startMfr, tinyDemoSets } from "../helpers/mfr.ts";

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
  const r = await mfr([
    ...["launch", "--nproc-per-node", "2", "--", "train", "configs/demo.ts"],
    ...tinyDemoSets(runDir, data, { steps: 3, checkpointEvery: 0 }),
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

/** Whether a process is running (a zombie waiting to be reaped has stopped: it counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function waitFor(what: string, ok: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) assert.fail(`${what} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const forever = userScript(
  "forever.ts",
  [
    'import fs from "node:fs";',
    "const dir: string = process.argv[2]!;",
    "fs.writeFileSync(`${dir}/rank${process.env.RANK}`, `${process.pid} ${process.ppid}`);",
    "setInterval(() => {}, 1000);",
  ].join("\n"),
);

// Killed like a user's `kill -9` of the command they started. With the heap settings in the
// environment (as the tests run) that process is the launcher; without them it is bin/mfr.js's
// first process, and the launcher is the child it restarted itself in.
for (const heap of ["set", "unset"] as const) {
  test(`ranks stop when their launcher is SIGKILLed (heap settings ${heap} at start)`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-orphans-"));
    const env = { GLIBC_TUNABLES: heap === "set" ? heapEnv({}).GLIBC_TUNABLES : undefined };
    const { child, done } = startMfr(["launch", "--nproc-per-node", "2", "--", forever, dir], { env });
    const files = [0, 1].map((r) => path.join(dir, `rank${r}`));
    await waitFor(
      "ranks not started",
      () => files.every((f) => fs.existsSync(f) && fs.statSync(f).size > 0),
      60_000,
    );
    const ranks = files.map((f) => fs.readFileSync(f, "utf8").split(" ").map(Number) as [number, number]);
    const launcher = ranks[0]![1];
    assert.equal(launcher === child.pid, heap === "set");
    child.kill("SIGKILL");
    // Not `done`: that waits for the output pipes, which surviving ranks would hold open.
    await new Promise((r) => child.once("exit", r));
    void done;
    await waitFor(
      "ranks still running",
      () => !ranks.some(([pid]) => alive(pid)) && !alive(launcher),
      10_000,
    );
  });
}
