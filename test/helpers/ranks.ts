// Launches a worker script on K local ranks (Gloo on localhost) and collects the JSON line each
// prints. Rejects, with the ranks' stderr, when the job fails.
import assert from "node:assert/strict";
import { launch } from "../../src/dist/index.ts";

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
  const out: R[] = [];
  const errs: string[] = [];
  const ended = job.children.map(
    (c) =>
      new Promise<void>((resolve) => {
        let buf = "";
        c.stdout!.on("data", (d: Buffer) => (buf += d.toString()));
        c.stdout!.on("end", () => {
          for (const l of buf.split("\n")) if (l.startsWith("{")) out.push(JSON.parse(l) as R);
          resolve();
        });
        c.stderr!.on("data", (d: Buffer) => errs.push(d.toString()));
      }),
  );
  const r = await job.result;
  await Promise.all(ended);
  assert.equal(r.exitCode, 0, `${r.message}\n${errs.join("")}`);
  return out;
}
