// Distributed evaluation over real processes (Gloo on localhost, started by src/distributed's launcher)
// gives the numbers of one process.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "../../src/distributed/index.ts";
import { evaluatePairs } from "../../src/eval/index.ts";
import { DIST_CASES, distInput } from "./dist-case.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

test("2 ranks over a Gloo process group equal one process", async () => {
  const job = await launch({
    nprocPerNode: 2,
    argv: [path.join(here, "dist-worker.ts")],
    execArgv: ["--import", "tsx"],
    env: { ...process.env },
    stdio: "pipe",
    graceMs: 2000,
  });
  const lines: { rank: number; name: string; subsets: unknown; curves: unknown }[] = [];
  let errors = "";
  for (const c of job.children) {
    let buf = "";
    c.stdout!.on("data", (d: Buffer) => (buf += d.toString()));
    c.stdout!.on("end", () => {
      for (const l of buf.split("\n")) if (l.startsWith("{")) lines.push(JSON.parse(l) as (typeof lines)[0]);
    });
    c.stderr!.on("data", (d: Buffer) => (errors += d.toString()));
  }
  const r = await job.result;
  await new Promise((res) => setTimeout(res, 50));
  assert.equal(r.exitCode, 0, errors);
  const input = distInput();
  for (const [name, opts] of Object.entries(DIST_CASES)) {
    const one = await evaluatePairs(input, opts);
    const got = lines.filter((l) => l.name === name);
    assert.equal(got.length, 2, name);
    for (const l of got) {
      assert.deepEqual(l.subsets, JSON.parse(JSON.stringify(one.subsets)), `${name} rank ${l.rank}`);
      assert.deepEqual(l.curves, JSON.parse(JSON.stringify(one.curves)), `${name} rank ${l.rank}`);
    }
  }
});
