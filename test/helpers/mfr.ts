// Runs the mfr command exactly as the README tells users to start it (`node bin/mfr.js …`), and
// the tiny training settings the CLI tests share.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const mfrBin = path.join(root, "bin/mfr.js");

export interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts `node bin/mfr.js ...args` in the repository root; `done` settles when it exits. With
 * `detached` it leads a process group of its own, so `process.kill(-child.pid, sig)` reaches it
 * and whatever it started, as a terminal's Ctrl-C does.
 */
export function startMfr(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; detached?: boolean } = {},
): { child: ChildProcess; done: Promise<Outcome> } {
  const child = spawn(process.execPath, [mfrBin, ...args], {
    cwd: opts.cwd ?? root,
    env: { ...process.env, MFR_NUM_THREADS: "1", ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: opts.detached ?? false,
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Outcome>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

export const mfr = (args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Outcome> =>
  startMfr(args, opts).done;

/** `mfr ...args` to completion, synchronously (one intra-op thread). */
export function mfrSync(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [mfrBin, ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, MFR_NUM_THREADS: "1" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `--set` overrides that shrink configs/demo.ts to a few fast steps of a tiny backbone on `data`. */
export function tinyDemoSets(
  runDir: string,
  data: string,
  over: Record<string, string | number | null> = {},
): string[] {
  return Object.entries({
    runDir,
    "data.path": data,
    "data.batchSize": 4,
    "data.workers": 1,
    "model.width": 0.125,
    "model.embeddingSize": 16,
    "optim.warmupSteps": 1,
    logEvery: 1,
    verify: null,
    ...over,
  }).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
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
