// The run folder around the training loop: opening it (temporary files a killed run left),
// choosing the checkpoint to resume from (and, when the newest is damaged, naming the newest
// intact one), and cutting metrics back to the resumed step so no step is logged twice.
import fs from "node:fs";
import path from "node:path";
import * as T from "../torch/index.ts";
import { listCheckpoints, verifyCheckpoint } from "./checkpoint.ts";

/**
 * Removes writeAtomic's temporary files that a killed run left in the run folder and its
 * checkpoints. Call on rank 0 before the first collective: no rank writes before that.
 */
export function removeStaleTempFiles(runDir: string): string[] {
  const root = path.join(runDir, "checkpoints");
  const steps = fs.existsSync(root) ? fs.readdirSync(root).map((d) => path.join(root, d)) : [];
  const dirs = [runDir, root, ...steps.filter((d) => fs.statSync(d).isDirectory())];
  return dirs.flatMap((d) => T.removeStaleTemps(d));
}

/**
 * The checkpoint folder to resume from: `resume` names one, or `true` takes the newest complete
 * one in runDir, which must exist (resuming is asked for: starting over would be a surprise).
 */
export function checkpointToResume(runDir: string, resume: true | string): string {
  if (resume !== true) {
    if (!fs.existsSync(path.join(resume, "manifest.json")))
      throw new Error(`--resume ${resume}: not a complete checkpoint folder (no manifest.json)`);
    return resume;
  }
  const latest = listCheckpoints(runDir).at(-1);
  if (!latest)
    throw new Error(
      `--resume: ${path.join(runDir, "checkpoints")} holds no complete checkpoint (step-N folder with manifest.json); ` +
        `run without --resume to start from step 0`,
    );
  return latest.dir;
}

/** Where to go when `dir`, the newest checkpoint, is damaged: the newest intact one before it. */
export function intactCheckpointHint(runDir: string, dir: string): string {
  const older = listCheckpoints(runDir)
    .filter((c) => path.resolve(c.dir) !== path.resolve(dir))
    .reverse();
  for (const c of older) {
    try {
      verifyCheckpoint(c.dir);
    } catch {
      continue;
    }
    return `the earlier checkpoint ${c.dir} (step ${c.step}) is intact: resume from it with --resume ${c.dir}`;
  }
  return `no earlier intact checkpoint in ${path.join(runDir, "checkpoints")}`;
}

/**
 * Drops the lines of a metrics file past `step` (logged after the checkpoint being resumed), and
 * a torn last line, atomically: the resumed run logs those steps again.
 */
export function truncateMetrics(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const lines = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
  const keep = lines.filter((line, i) => {
    try {
      const logged = (JSON.parse(line) as { step?: unknown }).step;
      return typeof logged !== "number" || logged <= step;
    } catch {
      return i < lines.length - 1; // only the last line can be torn by a kill
    }
  });
  if (keep.length === lines.length) return;
  T.writeAtomic(file, (fd) => fs.writeSync(fd, keep.map((l) => l + "\n").join("")));
}
