// A rank that stops answering (SIGSTOP: alive, connections open, silent) is named by the rank
// that waits for it, within the collective timeout plus the few seconds the diagnosis takes.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/index.ts";
import { fileURLToPath } from "node:url";
import { collectJsonLines, freePort, launch } from "../../src/distributed/index.ts";
import { startMfr } from "../helpers/mfr.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-hung-"));
const data = path.join(tmp, "data");
const stopped: number[] = [];

before(async () => {
  await synthesizeDataset({ out: data, identities: 6, imagesPerIdentity: 4, seed: 1 });
});
after(() => {
  for (const pid of stopped) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The pid of the `mfr train` rank with this RANK and MASTER_PORT (ranks are grandchildren). */
function rankPid(rank: number, port: number): number | undefined {
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (!cmd.includes("train")) continue;
      const env = fs.readFileSync(`/proc/${d}/environ`, "utf8").split("\0");
      if (env.includes(`RANK=${rank}`) && env.includes(`MASTER_PORT=${port}`)) return Number(d);
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

async function until<T>(what: string, ms: number, f: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test(
  "SIGSTOP of rank 1 mid-run: rank 0 fails within the timeout, naming rank 1",
  // the start alone (two ranks loading tsx and libtorch) took 70 s on a 2-core machine at load 38
  { timeout: 240_000 },
  async () => {
    const port = await freePort();
    const timeoutS = 6;
    const sets = {
      runDir: path.join(tmp, "run"),
      "data.path": data,
      "data.batchSize": 4,
      "data.workers": 1,
      "model.width": 0.125,
      "model.embeddingSize": 16,
      steps: 100000,
      checkpointEvery: 0,
      verify: null,
      logEvery: 1,
      "dist.timeoutS": timeoutS,
    };
    const job = startMfr([
      ...["launch", "--nproc-per-node", "2", "--master-port", String(port), "--grace", "1"],
      ...["--", "train", "configs/demo.ts"],
      ...Object.entries(sets).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
    ]);
    let stderr = "";
    job.child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    await until("step 3", 150_000, () => (/^step 3 loss/m.test(stderr) ? true : undefined));
    const pid = await until("rank 1's pid", 5000, () => rankPid(1, port));
    process.kill(pid, "SIGSTOP");
    stopped.push(pid);
    const t0 = Date.now();
    const r = await job.done;
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(r.code, 1, r.stderr);
    // the survivor's own message, not only the launcher's
    assert.match(
      r.stderr,
      new RegExp(`^mfr: rank 1 did not answer within ${timeoutS} s in .*, seen from rank 0`, "m"),
      r.stderr,
    );
    // timeout + the survivor's wait for reports (5 s) + the launcher's grace (1 s) + exit
    assert.ok(seconds < timeoutS + 5 + 1 + 8, `took ${seconds} s`);
  },
);

test(
  "a rank stopped before backward is named by the rank whose gradient all-reduce waits for it",
  { timeout: 120_000 },
  async () => {
    const job = await launch({
      nprocPerNode: 2,
      argv: [path.join(here, "worker-hung.ts")],
      execArgv: ["--import", "tsx"],
      env: { ...process.env, MFR_NUM_THREADS: "1", TEST_TIMEOUT_MS: "4000" },
      stdio: "pipe",
    });
    const out = collectJsonLines<{ rank: number; passthrough: boolean; error: string; ms: number }>(
      job.children,
    );
    const [rank0, rank1] = job.children;
    stopped.push(rank1!.pid!);
    await new Promise((resolve) => rank0!.on("exit", resolve));
    rank1!.kill("SIGKILL");
    await job.result;
    await out.done;
    const r0 = out.lines.find((l) => l.rank === 0);
    assert.ok(r0, out.stderr());
    assert.match(
      r0.error,
      /^rank 1 did not answer within 4 s in a collective, seen from rank 0: .*Timed out/,
    );
    // timeout + the wait for reports, not more
    assert.ok(r0.ms < 4000 + 5000 + 3000, `took ${r0.ms} ms`);
    // a rank's own error is not blamed on others
    assert.equal(r0.passthrough, true);
  },
);
