// Runs the CLI as users start it (`node bin/mfr.js ...`) and a tiny training config for it.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const bin = fileURLToPath(new URL("../../bin/mfr.js", import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `mfr ...args` in a child process, one intra-op thread. */
export function mfrCli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: "utf8",
    env: { ...process.env, MFR_NUM_THREADS: "1" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Writes a config module for a few steps of a tiny backbone on `data` into `dir` and returns its
 * path (a .mts: the folder has no package.json saying it holds ES modules).
 */
export function tinyTrainConfig(
  dir: string,
  data: string,
  runDir: string,
  over: Record<string, unknown> = {},
): string {
  const file = path.join(dir, `config-${path.basename(runDir)}.mts`);
  const cfg = {
    runDir,
    data: { path: data, batchSize: 4, workers: 1, maskProb: 0 },
    model: { backbone: "[1,1,1,1]", width: 0.125, embeddingSize: 16 },
    head: { numClasses: 0, sampleRate: 1, margin: "cosface" },
    optim: { lr: 0.05, warmupSteps: 1 },
    dist: {},
    train: {},
    steps: 4,
    logEvery: 1,
    checkpointEvery: 2,
    keepCheckpoints: 3,
    ...over,
  };
  fs.writeFileSync(file, `export default ${JSON.stringify(cfg, null, 2)};\n`);
  return file;
}
