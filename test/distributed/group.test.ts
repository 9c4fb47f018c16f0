// Process groups over Gloo on localhost with 2 and 3 real processes started by the launcher.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch, firstSlurmHost, placementFromEnv } from "../../src/distributed/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

async function run(
  n: number,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; message?: string; lines: Record<string, unknown>[] }> {
  const job = await launch({
    nprocPerNode: n,
    argv: [path.join(here, "worker-collectives.ts")],
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: "pipe",
    graceMs: 2000,
  });
  const lines: Record<string, unknown>[] = [];
  for (const c of job.children) {
    let buf = "";
    c.stdout!.on("data", (d: Buffer) => (buf += d.toString()));
    c.stdout!.on("end", () => {
      for (const l of buf.split("\n"))
        if (l.startsWith("{")) lines.push(JSON.parse(l) as Record<string, unknown>);
    });
    c.stderr!.resume();
  }
  const r = await job.result;
  await new Promise((res) => setTimeout(res, 50));
  return {
    code: r.exitCode,
    message: r.message,
    lines: lines.sort((a, b) => (a.rank as number) - (b.rank as number)),
  };
}

for (const n of [2, 3]) {
  test(`collectives agree across ${n} ranks`, async () => {
    const { code, lines } = await run(n);
    assert.equal(code, 0);
    assert.equal(lines.length, n);
    const tri = (n * (n + 1)) / 2;
    for (const l of lines) {
      const r = l.rank as number;
      assert.equal(l.source, "torchrun");
      assert.deepEqual(l.sum, [tri, 10 * tri]);
      assert.deepEqual(l.max, [n - 1, 0]);
      assert.deepEqual(
        l.gather,
        Array.from({ length: n }, (_, i) => [i, i, i]),
      );
      assert.deepEqual(l.broadcast, [7, 8, 9]);
      assert.deepEqual(l.reduceScatter, [100 * r * n + (n * (n - 1)) / 2, n]);
      assert.equal(l.async, (n * (n - 1)) / 2);
    }
  });
}

test("a SIGKILLed rank ends the job with an error naming it; survivors fail fast", async () => {
  const { code, message, lines } = await run(3, { TEST_DIE_RANK: "1", TEST_TIMEOUT_MS: "15000" });
  assert.notEqual(code, 0);
  assert.match(message ?? "", /rank 1 \(pid \d+\) was killed by SIGKILL/);
  // survivors either saw the collective fail or were stopped by the launcher; none hang
  for (const l of lines) assert.notEqual(l.error, "no error");
});

test("placement from torchrun, Slurm and Open MPI variables", () => {
  assert.deepEqual(
    placementFromEnv({ RANK: "2", WORLD_SIZE: "4", LOCAL_RANK: "0", MASTER_ADDR: "h", MASTER_PORT: "1234" }),
    {
      rank: 2,
      worldSize: 4,
      localRank: 0,
      masterAddr: "h",
      masterPort: 1234,
      source: "torchrun",
    },
  );
  const slurm = placementFromEnv({
    SLURM_PROCID: "3",
    SLURM_NTASKS: "8",
    SLURM_LOCALID: "1",
    SLURM_JOB_NODELIST: "gpu[07-09,12],cpu1",
  });
  assert.deepEqual(
    [slurm.rank, slurm.worldSize, slurm.localRank, slurm.masterAddr, slurm.source],
    [3, 8, 1, "gpu07", "slurm"],
  );
  const mpi = placementFromEnv({
    OMPI_COMM_WORLD_RANK: "1",
    OMPI_COMM_WORLD_SIZE: "2",
    OMPI_COMM_WORLD_LOCAL_RANK: "1",
  });
  assert.deepEqual([mpi.rank, mpi.worldSize, mpi.source], [1, 2, "openmpi"]);
  assert.equal(placementFromEnv({}).source, "single");
  assert.throws(() => placementFromEnv({ RANK: "4", WORLD_SIZE: "4" }), /rank 4 is not below world size 4/);
  assert.equal(firstSlurmHost("node1"), "node1");
});
