// Under Slurm (srun starts every rank itself, no mfr launch) only global rank 0 prints progress.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort, isGlobalRankZero } from "../../src/distributed/index.ts";
import { synthesizeDataset } from "../../src/data/index.ts";
import { mfr } from "../helpers/mfr.ts";

const slurm = (rank: number, env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  SLURM_PROCID: String(rank),
  SLURM_NTASKS: "2",
  SLURM_LOCALID: String(rank),
  SLURM_JOB_NODELIST: "localhost",
  ...env,
});

test("isGlobalRankZero: the rank of torchrun, Slurm or Open MPI, not RANK alone", () => {
  assert.equal(isGlobalRankZero({}), true);
  assert.equal(isGlobalRankZero(slurm(0)), true);
  assert.equal(isGlobalRankZero(slurm(1)), false);
  assert.equal(isGlobalRankZero({ OMPI_COMM_WORLD_RANK: "3", OMPI_COMM_WORLD_SIZE: "4" }), false);
  assert.equal(isGlobalRankZero({ RANK: "1", WORLD_SIZE: "2" }), false);
  assert.equal(isGlobalRankZero({ RANK: "0", WORLD_SIZE: "2" }), true);
});

test("mfr train as two Slurm tasks: rank 1 prints no progress, rank 0 does", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-slurm-"));
  await synthesizeDataset({ out: path.join(dir, "data"), identities: 4, imagesPerIdentity: 2, seed: 3 });
  const sets = {
    runDir: path.join(dir, "run"),
    "data.path": path.join(dir, "data"),
    "data.batchSize": 4,
    "data.workers": 1,
    "model.width": 0.125,
    "model.embeddingSize": 16,
    "optim.warmupSteps": 1,
    steps: 2,
    logEvery: 1,
    checkpointEvery: 0,
    verify: null,
  };
  const args = [
    "train",
    "configs/demo.ts",
    ...Object.entries(sets).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
  ];
  const master = { MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(await freePort()) };
  const [r0, r1] = await Promise.all([0, 1].map((r) => mfr(args, { env: slurm(r, master) })));
  assert.equal(r0!.code, 0, r0!.stderr);
  assert.equal(r1!.code, 0, r1!.stderr);
  assert.match(r0!.stderr, /mfr train: 2 rank\(s\)/);
  assert.equal(r0!.stderr.match(/^step \d+ loss/gm)?.length, 2, r0!.stderr);
  assert.equal(r1!.stderr + r1!.stdout, "");
});
