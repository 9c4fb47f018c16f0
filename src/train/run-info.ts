// run.json: what a run was started with, so a result can be traced to its config and code: the
// resolved config, the versions of mfr, libtorch and Node, the git commit of the mfr checkout
// (when it is one), the world size and the machine. Written atomically by rank 0 at every start
// (a resumed run rewrites it: the latest start is the one that produced what follows).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../torch/index.ts";
import type { TrainConfig } from "./config.ts";

export interface RunInfo {
  config: TrainConfig;
  mfr: string;
  libtorch: string;
  node: string;
  /** HEAD of the mfr checkout running, with "-dirty" when it has uncommitted changes; null outside git. */
  git: string | null;
  worldSize: number;
  device: string;
  /** ISO time of this start. */
  started: string;
  resumedFrom: string | null;
  machine: {
    hostname: string;
    platform: string;
    arch: string;
    cpus: number;
    memoryGiB: number;
    cuda: boolean;
  };
}

const MFR_ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The commit of the mfr checkout at `root`, or null when it is not a git checkout (or git is missing). */
export function gitCommit(root = MFR_ROOT): string | null {
  const git = (...args: string[]): string =>
    execFileSync("git", ["-C", root, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  try {
    const head = git("rev-parse", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") === "" ? head : `${head}-dirty`;
  } catch {
    return null;
  }
}

export function runInfo(
  config: TrainConfig,
  o: { worldSize: number; device: string; resumedFrom?: string },
): RunInfo {
  const build = T.buildInfo();
  return {
    config,
    mfr: T.mfrVersion(),
    libtorch: build.torchVersion,
    node: process.version,
    git: gitCommit(),
    worldSize: o.worldSize,
    device: o.device,
    started: new Date().toISOString(),
    resumedFrom: o.resumedFrom ?? null,
    machine: {
      hostname: os.hostname(),
      platform: os.platform(),
      arch: os.arch(),
      cpus: os.cpus().length,
      memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      cuda: build.cuda,
    },
  };
}

/** Writes run.json into the run folder (temporary name, fsync, rename). */
export function writeRunInfo(runDir: string, info: RunInfo): string {
  const file = path.join(runDir, "run.json");
  const bytes = Buffer.from(JSON.stringify(info, null, 2) + "\n", "utf8");
  T.writeAtomic(file, (fd) => fs.writeSync(fd, bytes));
  return file;
}
