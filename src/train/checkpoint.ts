// Checkpoints: one directory per step under <runDir>/checkpoints, written by every rank:
//   backbone.safetensors     rank 0: backbone parameters and buffers + its optimizer state
//   backbone-zero-rank<r>.safetensors
//                            with ZeRO, each rank: its pieces' optimizer state with their global
//                            ranges (loads on any world size), instead of the state above
//   head-rank<r>.safetensors each rank: its class-centre shard and the shard's optimizer state,
//                            with the shard's [start, count) in the metadata (for resharding)
//   state-rank<r>.json       each rank: step, RNG state, LR schedule
//   manifest.json            rank 0, last, after a barrier: world size and the sha256 of every
//                            file. A checkpoint without a manifest is incomplete and ignored.
// Every file is written atomically (temporary name, fsync, rename). Resuming on a different
// world size re-slices the head shards (and their momentum) into the new layout; arcface_torch
// can only resume on the same world size.
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import * as T from "../torch/index.ts";
import { type ProcessGroup } from "../distributed/index.ts";
import { type PartialFC, classShard } from "../head/index.ts";
import {
  type Optimizer,
  type ZeroOptimizer,
  optimizerStateFromTensors,
  optimizerStateToTensors,
} from "../optim/index.ts";
import { type Module } from "../nn/index.ts";
import { type LossScaleState, type LossScaler } from "./precision.ts";

type AnyOptimizer = Optimizer<{ lr: number } & Record<string, number | boolean>>;

export interface RankState {
  step: number;
  worldSize: number;
  rng: string;
  schedule: { iteration: number; baseLrs: number[] };
  lossScale?: LossScaleState;
}

export interface Manifest {
  step: number;
  worldSize: number;
  numClasses: number;
  files: Record<string, string>;
}

export interface TrainState {
  backbone: Module;
  backboneOpt: AnyOptimizer;
  head: PartialFC;
  headOpt: AnyOptimizer;
  /** With ZeRO: the sharded backbone optimizer (backboneOpt is its inner optimizer). */
  zero?: ZeroOptimizer;
  scaler?: LossScaler;
  /** The LR iteration to store (both schedules advance together). */
  schedule: { iteration: number; baseLrs: number[] };
}

const zeroFile = (rank: number): string => `backbone-zero-rank${rank}.safetensors`;

const stepDir = (runDir: string, step: number): string =>
  path.join(runDir, "checkpoints", `step-${String(step).padStart(8, "0")}`);

function sha256(file: string): string {
  return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

function writeJsonAtomic(file: string, value: unknown): void {
  T.writeAtomic(file, (fd) => fs.writeSync(fd, JSON.stringify(value, null, 2) + "\n"));
}

/** Writes this rank's part of the checkpoint at `step`; rank 0 seals it with the manifest. */
export function saveCheckpoint(group: ProcessGroup, runDir: string, step: number, s: TrainState): string {
  const dir = stepDir(runDir, step);
  fs.mkdirSync(dir, { recursive: true });
  const r = group.rank;
  T.noGrad(() =>
    T.scope(() => {
      if (r === 0) {
        const opt = s.zero ? undefined : optimizerStateToTensors(s.backboneOpt.stateDict());
        const tensors = new Map<string, T.Tensor>();
        for (const [k, t] of s.backbone.stateDict()) tensors.set(`model.${k}`, t);
        for (const [k, t] of opt?.tensors ?? []) tensors.set(k, t);
        T.saveSafetensors(path.join(dir, "backbone.safetensors"), tensors, opt?.metadata ?? {});
      }
      if (s.zero) {
        const shard = s.zero.shardState();
        T.saveSafetensors(path.join(dir, zeroFile(r)), shard.tensors, shard.metadata);
      }
      const hopt = optimizerStateToTensors(s.headOpt.stateDict());
      const tensors = new Map<string, T.Tensor>([["weight", s.head.weight], ...hopt.tensors]);
      T.saveSafetensors(path.join(dir, `head-rank${r}.safetensors`), tensors, {
        ...hopt.metadata,
        "mfr.shard": JSON.stringify(s.head.shard),
        "mfr.numClasses": String(s.head.o.numClasses),
      });
      const rng = T.getRngState();
      const state: RankState = {
        step,
        worldSize: group.worldSize,
        rng: Buffer.from(rng.bytes()).toString("base64"),
        schedule: s.schedule,
        ...(s.scaler ? { lossScale: s.scaler.stateDict() } : {}),
      };
      writeJsonAtomic(path.join(dir, `state-rank${r}.json`), state);
    }),
  );
  group.barrier().wait();
  if (r === 0) {
    const files: Record<string, string> = {};
    for (const f of fs.readdirSync(dir).sort()) if (!f.startsWith(".")) files[f] = sha256(path.join(dir, f));
    const manifest: Manifest = { step, worldSize: group.worldSize, numClasses: s.head.o.numClasses, files };
    writeJsonAtomic(path.join(dir, "manifest.json"), manifest);
  }
  group.barrier().wait();
  return dir;
}

/** Complete checkpoints (those with a manifest), oldest first. */
export function listCheckpoints(runDir: string): { step: number; dir: string }[] {
  const root = path.join(runDir, "checkpoints");
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((d) => /^step-\d+$/.test(d) && fs.existsSync(path.join(root, d, "manifest.json")))
    .map((d) => ({ step: Number(d.slice(5)), dir: path.join(root, d) }))
    .sort((a, b) => a.step - b.step);
}

/** Removes all but the newest `keep` complete checkpoints, and incomplete ones older than them. */
export function pruneCheckpoints(runDir: string, keep: number): void {
  const all = listCheckpoints(runDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep)))
    fs.rmSync(c.dir, { recursive: true, force: true });
}

/**
 * Loads the checkpoint in `dir` into the training state: checksums verified, head shards re-sliced
 * when the world size changed. Returns the step it was taken at and this rank's saved state (its
 * RNG applies only when the world size is unchanged).
 */
export function loadCheckpoint(
  group: ProcessGroup,
  dir: string,
  s: TrainState,
): { step: number; rank?: RankState } {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as Manifest;
  for (const [f, sum] of Object.entries(manifest.files)) {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) throw new Error(`${dir}: checkpoint file '${f}' is missing`);
    if (sha256(file) !== sum) throw new Error(`${file}: checksum mismatch (the checkpoint is corrupt)`);
  }
  if (manifest.numClasses !== s.head.o.numClasses) {
    throw new Error(`${dir}: the head has ${manifest.numClasses} classes, this run ${s.head.o.numClasses}`);
  }
  T.noGrad(() =>
    T.scope(() => {
      const bb = T.loadSafetensors(path.join(dir, "backbone.safetensors"));
      const model = new Map<string, T.Tensor>();
      for (const [k, t] of bb.tensors) if (k.startsWith("model.")) model.set(k.slice(6), t);
      s.backbone.loadStateDict(model);
      const savedZero = zeroFile(0) in manifest.files;
      if (savedZero !== (s.zero !== undefined)) {
        throw new Error(
          `${dir}: saved ${savedZero ? "with" : "without"} ZeRO; resume with train.zero ${savedZero ? "1 or 2" : "0"} (any world size)`,
        );
      }
      if (s.zero) {
        const zero = s.zero;
        const files = Array.from({ length: manifest.worldSize }, (_, i) => path.join(dir, zeroFile(i)))
          .filter((file) => zero.needsShard(file, T.readSafetensorsMetadata(file)))
          .map((file) => ({ source: file, ...T.loadSafetensors(file) }));
        zero.loadShardStates(files);
      } else {
        s.backboneOpt.loadStateDict(optimizerStateFromTensors(bb));
      }
      loadHeadShard(dir, manifest.worldSize, s.head, s.headOpt);
    }),
  );
  const own = path.join(dir, `state-rank${group.rank}.json`);
  const rank =
    manifest.worldSize === group.worldSize
      ? (JSON.parse(fs.readFileSync(own, "utf8")) as RankState)
      : undefined;
  if (rank) T.setRngState(T.tensor(new Uint8Array(Buffer.from(rank.rng, "base64"))));
  if (s.scaler) {
    // The scale is the same on every rank: rank 0's file serves any world size.
    const any =
      rank ?? (JSON.parse(fs.readFileSync(path.join(dir, "state-rank0.json"), "utf8")) as RankState);
    if (any.lossScale) s.scaler.loadStateDict(any.lossScale);
  }
  return { step: manifest.step, rank };
}

/**
 * Copies the rows of this rank's shard, and their optimizer state, out of the shards saved by
 * `savedWorld` ranks in `dir` (any world size: this is the resharding).
 */
export function loadHeadShard(dir: string, savedWorld: number, head: PartialFC, headOpt: AnyOptimizer): void {
  const { start, count } = head.shard;
  const numClasses = head.o.numClasses;
  const rowState = new Map<string, T.Tensor>();
  let meta: Record<string, string> = {};
  for (let r = 0; r < savedWorld; r++) {
    const old = classShard(numClasses, r, savedWorld);
    const lo = Math.max(start, old.start);
    const hi = Math.min(start + count, old.start + old.count);
    if (lo >= hi) continue;
    const file = T.loadSafetensors(path.join(dir, `head-rank${r}.safetensors`));
    meta = file.metadata;
    for (const [k, t] of file.tensors) {
      if (t.ndim !== 2 || t.size(0) !== old.count) {
        if (!rowState.has(k)) rowState.set(k, t); // scalars (step counters) are the same everywhere
        continue;
      }
      let into = rowState.get(k);
      if (!into) rowState.set(k, (into = T.zeros([count, t.size(1)], { dtype: t.dtype })));
      into.narrow(0, lo - start, hi - lo).copy_(t.narrow(0, lo - old.start, hi - lo));
    }
  }
  const weight = rowState.get("weight");
  if (!weight) throw new Error(`${dir}: no head shard covers classes [${start}, ${start + count})`);
  T.noGrad(() => head.weight.copy_(weight));
  rowState.delete("weight");
  headOpt.loadStateDict(optimizerStateFromTensors({ tensors: rowState, metadata: meta }));
}
