// How the mfr command behaves when things go wrong: one line per error unless --verbose, usage
// errors exit 2, and Ctrl-C during training stops every write whole, says how to resume, exits 130.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { listCheckpoints, verifyCheckpoint } from "../../src/train/index.ts";
import { mfr, root, startMfr, tinyTrainConfig } from "../helpers/mfr.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-manners-"));
const data = path.join(tmp, "data");

before(async () => {
  await synthesizeDataset({ out: data, identities: 5, imagesPerIdentity: 4, seed: 3 });
});

const STACK_FRAME = /^\s+at /m;

test("an error prints one line without --verbose and its stack with it; usage errors exit 2", async () => {
  const missing = path.join(tmp, "no-such-config.ts");
  const [plain, verbose, usage, badFlag] = await Promise.all([
    mfr(["train", missing]),
    mfr(["train", missing, "--verbose"]),
    mfr(["trian"]),
    mfr(["launch", "--nproc-per-node", "two", "--", "models"]),
  ]);
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, new RegExp(`^mfr: .*${path.basename(missing)}.*\\n$`));
  assert.doesNotMatch(plain.stderr, STACK_FRAME);
  assert.equal(verbose.code, 1);
  assert.match(verbose.stderr, new RegExp(`^mfr: .*${path.basename(missing)}`));
  assert.match(verbose.stderr, STACK_FRAME);
  assert.equal(usage.code, 2, usage.stderr);
  assert.match(usage.stderr, /unknown command 'trian'/);
  assert.equal(badFlag.code, 2, badFlag.stderr);
  assert.match(badFlag.stderr, /--nproc-per-node must be an integer/);
});

/** Every file under dir, recursively. */
const walk = (dir: string): string[] =>
  fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));

const loggedSteps = (run: string): number[] =>
  fs
    .readFileSync(path.join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { step: number }).step);

test("Ctrl-C during mfr train: a complete checkpoint at the stop, no temporary files, exit 130, and the printed command resumes", async () => {
  const run = path.join(tmp, "run");
  const cfg = tinyTrainConfig(tmp, data, run, { steps: 1000, checkpointEvery: 3, keepCheckpoints: 2 });
  const { child, done } = startMfr(["train", cfg], { detached: true });
  let stderr = "";
  await new Promise<void>((resolve) => {
    const onData = (d: Buffer): void => {
      stderr += d.toString();
      if (/^step 4 /m.test(stderr)) {
        child.stderr!.off("data", onData);
        resolve();
      }
    };
    child.stderr!.on("data", onData);
  });
  process.kill(-child.pid!, "SIGINT");
  const r = await done;
  assert.equal(r.code, 130, r.stderr);
  const at = Number(/interrupted after step (\d+)/.exec(r.stderr)?.[1]);
  assert.ok(at >= 4 && at < 1000, r.stderr);

  assert.deepEqual(
    walk(run).filter((f) => /\.tmp-/.test(path.basename(f))),
    [],
    "no temporary file is left",
  );
  assert.ok(fs.existsSync(path.join(run, "report.html")), "the run's report is written at the stop too");
  const newest = listCheckpoints(run).at(-1)!;
  assert.equal(newest.step, at, "a checkpoint at the step the run stopped after");
  verifyCheckpoint(newest.dir);
  assert.deepEqual(
    loggedSteps(run),
    Array.from({ length: at }, (_, i) => i + 1),
  );

  // The command it printed, two steps further, picks up where it stopped.
  const hint = /Resume with:\n {2}mfr (.+)\n/.exec(r.stderr)?.[1];
  assert.ok(hint, r.stderr);
  assert.equal(hint, `train ${cfg} --resume`);
  const resumed = await mfr([...hint.split(" "), "--set", `steps=${at + 2}`], { cwd: root });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /\(resumed\)/);
  assert.deepEqual(
    loggedSteps(run),
    Array.from({ length: at + 2 }, (_, i) => i + 1),
  );
});
