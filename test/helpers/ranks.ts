// Launches a worker script on K local ranks (Gloo on localhost) and collects the JSON line each
// prints. Rejects, with the ranks' stderr, when the job fails.
import assert from "node:assert/strict";
import { collectJsonLines, launch } from "../../src/distributed/index.ts";

export async function runRanks<R>(
  k: number,
  script: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<R[]> {
  const job = await launch({
    nprocPerNode: k,
    argv: [script, ...args],
    execArgv: ["--import", "tsx"],
    env: { ...process.env, MFR_NUM_THREADS: "1", ...env },
    stdio: "pipe",
  });
  const out = collectJsonLines<R>(job.children);
  const r = await job.result;
  await out.done;
  assert.equal(r.exitCode, 0, `${r.message}\n${out.stderr()}`);
  return out.lines;
}
