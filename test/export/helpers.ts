// Shared by the export tests: tiny backbones with BatchNorm statistics of their own, saved as mfr
// checkpoints, and a way to run the CLI.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../../src/torch/index.ts";
import { type Backbone, buildBackbone, saveBackboneCheckpoint } from "../../src/models/index.ts";

export const TINY = { width: 1 / 8, numFeatures: 32 } as const;

/** A tiny backbone whose BatchNorms hold statistics from a few training-mode batches (not 0/1). */
export function tinyBackbone(name: string, seed = 1): Backbone {
  T.manualSeed(seed);
  const m = buildBackbone(name, TINY);
  T.scope(() => T.noGrad(() => [0, 1].forEach(() => m.forward(T.rand([4, 3, 112, 112]).mul(2).sub(1)))));
  return m.eval();
}

/** Writes tinyBackbone(name) as an mfr checkpoint in `dir` and returns its path. */
export function tinyCheckpoint(name: string, dir: string, seed = 1): string {
  const m = tinyBackbone(name, seed);
  const file = path.join(dir, `${name}.safetensors`);
  saveBackboneCheckpoint(file, m);
  m.dispose();
  return file;
}

/**
 * Writes `m` as the trainer does into folder `step`: backbone.safetensors with "model." keys
 * beside optimizer state, sealed by a manifest.json of checksums. Returns the backbone file.
 */
export function trainerCheckpoint(step: string, m: Backbone): string {
  mkdirSync(step, { recursive: true });
  const tensors = new Map<string, T.Tensor>();
  for (const [k, t] of m.stateDict()) tensors.set(`model.${k}`, t);
  const momentum = T.zeros([3]);
  tensors.set("optim.state.0.momentum_buffer", momentum);
  const file = path.join(step, "backbone.safetensors");
  T.saveSafetensors(file, tensors, { "optim.kind": "sgd" });
  momentum.dispose();
  const files = { "backbone.safetensors": T.sha256File(file) };
  writeFileSync(
    path.join(step, "manifest.json"),
    JSON.stringify({ step: 10, worldSize: 1, numClasses: 4, files }),
  );
  return file;
}

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** Runs `mfr ...args`; returns status, stdout and stderr. */
export function mfr(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", main, ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `mfr ...args` and asserts success. */
export function mfrOk(...args: string[]): string {
  const r = mfr(...args);
  assert.equal(r.status, 0, `mfr ${args.join(" ")} failed:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}
