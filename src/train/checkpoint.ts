// Checkpoints: one directory per step under <runDir>/checkpoints, written by every rank:
//   backbone.safetensors     rank 0: backbone parameters and buffers ("model.*") + its optimizer
//                            state (+ a distillation projection, "distill.projection.*")
//   backbone-zero-rank<r>.safetensors
//                            with ZeRO, each rank: its pieces' optimizer state with their global
//                            ranges (loads on any world size), instead of the state above
//   head-rank<r>.safetensors each rank: its class-centre shard and the shard's optimizer state,
//                            with the shard's [start, count) in the metadata (for resharding)
//   state-rank<r>.json       each rank: step, RNG state (the LR schedule follows from the step)
//   manifest.json            rank 0, last, after a barrier: world size and the sha256 of every
//                            file. A checkpoint without a manifest is incomplete and ignored.
// Every file is written atomically (temporary name, fsync, rename). Each rank hashes its files as
// it writes them and hands the digests to rank 0 through the job's store; on resume each rank
// checks only the files it reads, in the pass that reads them, so a ZeRO or head shard is read
// once, by its rank. The manifest's sha256 is the files' only checksum (safetensors files written
// here carry none of their own). Resuming on a different world size re-slices the head shards
// (and their momentum) into the new layout; arcface_torch can only resume on the same world size.
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import * as T from "../torch/index.ts";
import { type ProcessGroup } from "../distributed/index.ts";
import { type PartialFC, classShard } from "../head/index.ts";
import { optimizerStateFromTensors, optimizerStateToTensors } from "../optim/index.ts";
import { type Module } from "../nn/index.ts";
import { listCheckpoints } from "../models/index.ts";
import { type LossScaleState, type LossScaler } from "./precision.ts";
import { type AnyOptimizer, type GradientSync } from "./sync.ts";

export interface RankState {
  step: number;
  worldSize: number;
  rng: string;
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
  /** The backbone's optimizer state comes from its gradient sync (sharded with ZeRO). */
  sync: GradientSync;
  head: PartialFC;
  headOpt: AnyOptimizer;
  scaler?: LossScaler;
  /** Distillation's projection of the student's embedding (trains with the backbone). */
  projection?: Module;
}

const MANIFEST = "manifest.json";
const PROJECTION = "distill.projection.";

const zeroFile = (rank: number): string => `backbone-zero-rank${rank}.safetensors`;

/** The files rank `r` may write (which it does depends on its rank and on ZeRO). */
const ownFiles = (r: number): string[] => [
  "backbone.safetensors",
  zeroFile(r),
  `head-rank${r}.safetensors`,
  `state-rank${r}.json`,
];

const stepDir = (runDir: string, step: number): string =>
  path.join(runDir, "checkpoints", `step-${String(step).padStart(8, "0")}`);

/** Writes `value` as JSON atomically; returns the file's sha256. */
function writeJsonAtomic(file: string, value: unknown): string {
  const bytes = Buffer.from(JSON.stringify(value, null, 2) + "\n");
  T.writeAtomic(file, (fd) => fs.writeSync(fd, bytes));
  return createHash("sha256").update(bytes).digest("hex");
}

const sha256Of = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** Writes this rank's part of the checkpoint at `step`; rank 0 seals it with the manifest. */
export function saveCheckpoint(group: ProcessGroup, runDir: string, step: number, s: TrainState): string {
  const dir = stepDir(runDir, step);
  fs.mkdirSync(dir, { recursive: true });
  const r = group.rank;
  // Saving again at a step (a run resumed from before it): unseal the old checkpoint first, so
  // that a crash meanwhile cannot leave the old manifest over a mix of old and new files.
  if (r === 0) fs.rmSync(path.join(dir, MANIFEST), { force: true });
  const mine: Record<string, string> = {};
  const save = (name: string, tensors: T.TensorMap, metadata: Record<string, string>): void => {
    mine[name] = T.saveSafetensorsHashed(path.join(dir, name), tensors, metadata);
  };
  T.noGrad(() =>
    T.scope(() => {
      const { sharded } = s.sync;
      if (r === 0) {
        const opt = sharded ? undefined : s.sync.stateDict();
        const tensors = new Map<string, T.Tensor>();
        for (const [k, t] of s.backbone.stateDict()) tensors.set(`model.${k}`, t);
        for (const [k, t] of s.projection?.stateDict() ?? []) tensors.set(`${PROJECTION}${k}`, t);
        for (const [k, t] of opt?.tensors ?? []) tensors.set(k, t);
        save("backbone.safetensors", tensors, opt?.metadata ?? {});
      }
      if (sharded) {
        const shard = s.sync.stateDict();
        save(zeroFile(r), shard.tensors, shard.metadata);
      }
      const hopt = optimizerStateToTensors(s.headOpt.stateDict());
      const tensors = new Map<string, T.Tensor>([["weight", s.head.weight], ...hopt.tensors]);
      save(`head-rank${r}.safetensors`, tensors, {
        ...hopt.metadata,
        "mfr.shard": JSON.stringify(s.head.shard),
        "mfr.numClasses": String(s.head.numClasses),
      });
      const rng = T.getRngState();
      const state: RankState = {
        step,
        worldSize: group.worldSize,
        rng: Buffer.from(rng.bytes()).toString("base64"),
        ...(s.scaler ? { lossScale: s.scaler.stateDict() } : {}),
      };
      const name = `state-rank${r}.json`;
      mine[name] = writeJsonAtomic(path.join(dir, name), state);
    }),
  );
  // Rank 0 collects every rank's digests (32 bytes for each file a rank may write) in one gather,
  // which also waits for every rank's files.
  const digests = T.scope(() => {
    const bytes = new Uint8Array(32 * ownFiles(r).length);
    ownFiles(r).forEach((f, i) => {
      if (mine[f] !== undefined) bytes.set(Buffer.from(mine[f], "hex"), 32 * i);
    });
    return group
      .allGather(T.tensor(bytes))
      .wait()
      .map((t) => t.data() as Uint8Array);
  });
  if (r === 0) {
    const files: Record<string, string> = {};
    digests.forEach((bytes, q) =>
      ownFiles(q).forEach((f, i) => {
        const d = bytes.subarray(32 * i, 32 * i + 32);
        if (d.some((x) => x !== 0)) files[f] = Buffer.from(d).toString("hex");
      }),
    );
    const sorted = Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const manifest: Manifest = {
      step,
      worldSize: group.worldSize,
      numClasses: s.head.numClasses,
      files: sorted,
    };
    writeJsonAtomic(path.join(dir, MANIFEST), manifest);
  }
  group.barrier().wait();
  return dir;
}

/** A manifest's files of a checkpoint saved by `worldSize` ranks (without ZeRO's). */
function requiredFiles(worldSize: number): string[] {
  const perRank = (r: number): string[] => [`head-rank${r}.safetensors`, `state-rank${r}.json`];
  return ["backbone.safetensors", ...Array.from({ length: worldSize }, (_, r) => perRank(r)).flat()];
}

const isCount = (v: unknown, min: number): v is number => Number.isSafeInteger(v) && (v as number) >= min;

/**
 * The checkpoint's manifest.json, its fields checked (step matching the folder name, the files of
 * every rank listed): errors name the file and the field. Checksums are verifyCheckpoint's.
 */
export function readManifest(dir: string): Manifest {
  const file = path.join(dir, MANIFEST);
  const m = T.readJsonFile(file) as Partial<Manifest> | null;
  const bad = (what: string): Error => new Error(`${file}: ${what}; the manifest is corrupt or was edited`);
  if (typeof m !== "object" || m === null || Array.isArray(m)) throw bad("not a JSON object");
  if (!isCount(m.step, 0)) throw bad(`"step" is ${JSON.stringify(m.step)}, not a step number`);
  const named = /^step-(\d+)$/.exec(path.basename(dir));
  if (named && Number(named[1]) !== m.step)
    throw bad(`"step" is ${m.step} but the folder is ${path.basename(dir)}`);
  if (!isCount(m.worldSize, 1)) throw bad(`"worldSize" is ${JSON.stringify(m.worldSize)}`);
  if (!isCount(m.numClasses, 1)) throw bad(`"numClasses" is ${JSON.stringify(m.numClasses)}`);
  const files = m.files;
  if (typeof files !== "object" || files === null || Object.values(files).some((v) => typeof v !== "string"))
    throw bad(`"files" is not a map of file names to checksums`);
  const missing = requiredFiles(m.worldSize).filter((f) => !(f in files));
  if (missing.length > 0) throw bad(`"files" does not list ${missing.join(", ")}`);
  return m as Manifest;
}

/** A checkpoint whose manifest or files are damaged (an earlier one may still be intact). */
export class CorruptCheckpointError extends Error {}

/** The checkpoint's manifest, after checking every file it lists against its checksum. */
export function verifyCheckpoint(dir: string): Manifest {
  try {
    const manifest = readManifest(dir);
    T.verifyChecksums(dir, manifest.files);
    return manifest;
  } catch (e) {
    throw new CorruptCheckpointError((e as Error).message, { cause: e });
  }
}

const MANIFEST_SOURCE = "the checkpoint's manifest";

/** A checkpoint's safetensors file, checked against the manifest in the pass that reads it. */
function loadVerified(dir: string, name: string, manifest: Manifest): T.SafetensorsFile {
  const sha256 = manifest.files[name];
  if (sha256 === undefined)
    throw new Error(`${path.join(dir, name)}: not listed in ${path.join(dir, MANIFEST)}`);
  return T.loadSafetensors(path.join(dir, name), { expect: { sha256, source: MANIFEST_SOURCE } });
}

/** A rank's state file, checked against the manifest and consistent with it. */
function readRankState(dir: string, rank: number, manifest: Manifest): RankState {
  const name = `state-rank${rank}.json`;
  const file = path.join(dir, name);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new CorruptCheckpointError(`${file}: cannot be read (${(e as Error).message})`, { cause: e });
  }
  if (sha256Of(bytes) !== manifest.files[name])
    throw new CorruptCheckpointError(
      `${file}: checksum mismatch with ${MANIFEST_SOURCE} (the file is corrupt or was edited)`,
    );
  const state = JSON.parse(bytes.toString("utf8")) as RankState;
  if (state.step !== manifest.step || state.worldSize !== manifest.worldSize)
    throw new Error(
      `${file}: step ${state.step} of ${state.worldSize} rank(s), but manifest.json says step ${manifest.step} of ${manifest.worldSize}`,
    );
  return state;
}

export { listCheckpoints };

/** Removes all but the newest `keep` complete checkpoints, and incomplete ones older than them. */
export function pruneCheckpoints(runDir: string, keep: number): void {
  const all = listCheckpoints(runDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep)))
    fs.rmSync(c.dir, { recursive: true, force: true });
}

/** Runs `read`; any failure of it is the checkpoint's damage (a file missing, cut short, edited). */
function reading<R>(read: () => R): R {
  try {
    return read();
  } catch (e) {
    if (e instanceof CorruptCheckpointError) throw e;
    throw new CorruptCheckpointError((e as Error).message, { cause: e });
  }
}

/**
 * Loads the checkpoint in `dir` into the training state: head shards re-sliced when the world
 * size changed. This rank reads, and checks against the manifest, only the files it needs (the
 * backbone, the head and ZeRO shards overlapping its own, its state); every file is read and
 * checked before anything in `s` changes. Returns the step it was taken at and this rank's saved
 * state (its RNG applies only when the world size is unchanged).
 */
export function loadCheckpoint(
  group: ProcessGroup,
  dir: string,
  s: TrainState,
): { step: number; rank?: RankState } {
  const manifest = reading(() => readManifest(dir));
  if (manifest.numClasses !== s.head.numClasses) {
    throw new Error(`${dir}: the head has ${manifest.numClasses} classes, this run ${s.head.numClasses}`);
  }
  const savedZero = zeroFile(0) in manifest.files;
  if (savedZero !== s.sync.sharded) {
    throw new Error(
      `${dir}: saved ${savedZero ? "with" : "without"} ZeRO; resume with train.zero ${savedZero ? "1 or 2" : "0"} (any world size)`,
    );
  }
  const sameWorld = manifest.worldSize === group.worldSize;
  return T.noGrad(() =>
    T.scope(() => {
      const sync = s.sync;
      const read = reading(() => ({
        bb: loadVerified(dir, "backbone.safetensors", manifest),
        zeroFiles: sync.sharded
          ? Array.from({ length: manifest.worldSize }, (_, i) => zeroFile(i))
              .filter((name) =>
                sync.needsState(path.join(dir, name), T.readSafetensorsMetadata(path.join(dir, name))),
              )
              .map((name) => ({ source: path.join(dir, name), ...loadVerified(dir, name, manifest) }))
          : [],
        head: readHeadShard(dir, manifest.worldSize, s.head, manifest),
        // The loss scale is the same on every rank: rank 0's file serves any world size.
        rank: sameWorld ? readRankState(dir, group.rank, manifest) : undefined,
        anyRank: !sameWorld && s.scaler ? readRankState(dir, 0, manifest) : undefined,
      }));
      const model = new Map<string, T.Tensor>();
      const projection = new Map<string, T.Tensor>();
      for (const [k, t] of read.bb.tensors) {
        if (k.startsWith("model.")) model.set(k.slice(6), t);
        if (k.startsWith(PROJECTION)) projection.set(k.slice(PROJECTION.length), t);
      }
      try {
        s.backbone.loadStateDict(model);
        if (s.projection && projection.size === 0)
          throw new Error(
            "holds no distillation projection (saved by a run without distill, or with equal sizes)",
          );
        s.projection?.loadStateDict(projection);
      } catch (e) {
        throw new Error(`${path.join(dir, "backbone.safetensors")}: ${(e as Error).message}`, { cause: e });
      }
      sync.loadStateDict(
        sync.sharded ? read.zeroFiles : [{ source: path.join(dir, "backbone.safetensors"), ...read.bb }],
      );
      applyHeadShard(read.head, s.head, s.headOpt);
      if (read.rank) T.setRngState(T.tensor(new Uint8Array(Buffer.from(read.rank.rng, "base64"))));
      const scale = (read.rank ?? read.anyRank)?.lossScale;
      if (s.scaler && scale) s.scaler.loadStateDict(scale);
      return { step: manifest.step, rank: read.rank };
    }),
  );
}

/** This rank's rows of the head, and their optimizer state, read out of the saved shards. */
interface HeadRows {
  rows: Map<string, T.Tensor>;
  metadata: Record<string, string>;
}

/**
 * Copies the rows of this rank's shard, and their optimizer state, out of the shards saved by
 * `savedWorld` ranks in `dir` (any world size: this is the resharding). Only the shards that
 * overlap this rank's are read; with `manifest`, each is checked against it as it is read.
 */
function readHeadShard(dir: string, savedWorld: number, head: PartialFC, manifest?: Manifest): HeadRows {
  const { start, count } = head.shard;
  const numClasses = head.numClasses;
  const rows = new Map<string, T.Tensor>();
  let metadata: Record<string, string> = {};
  for (let r = 0; r < savedWorld; r++) {
    const old = classShard(numClasses, r, savedWorld);
    const lo = Math.max(start, old.start);
    const hi = Math.min(start + count, old.start + old.count);
    if (lo >= hi) continue;
    const base = `head-rank${r}.safetensors`;
    const name = path.join(dir, base);
    const file = manifest ? loadVerified(dir, base, manifest) : T.loadSafetensors(name);
    metadata = file.metadata;
    const w = file.tensors.get("weight");
    if (w && w.dtype !== head.weight.dtype)
      throw new Error(`${name}: tensor 'weight' is stored as ${w.dtype}, the head's is ${head.weight.dtype}`);
    if (old.start === start && old.count === count) {
      // This rank's own shard (the world size is unchanged): its tensors as read, no copy.
      for (const [k, t] of file.tensors) rows.set(k, t);
      continue;
    }
    for (const [k, t] of file.tensors) {
      if (t.ndim !== 2 || t.size(0) !== old.count) {
        if (!rows.has(k)) rows.set(k, t); // scalars (step counters) are the same everywhere
        continue;
      }
      let into = rows.get(k);
      if (!into) rows.set(k, (into = T.zeros([count, t.size(1)], { dtype: t.dtype })));
      into.narrow(0, lo - start, hi - lo).copy_(t.narrow(0, lo - old.start, hi - lo));
    }
    // A shard wholly inside this rank's is used whole: free it before reading the next.
    for (const [k, t] of file.tensors) if (rows.get(k) !== t) t.dispose();
  }
  if (!rows.has("weight"))
    throw new Error(`${dir}: no head shard covers classes [${start}, ${start + count})`);
  return { rows, metadata };
}

function applyHeadShard({ rows, metadata }: HeadRows, head: PartialFC, headOpt: AnyOptimizer): void {
  const state = new Map(rows);
  T.noGrad(() => head.weight.copy_(state.get("weight")!));
  state.delete("weight");
  headOpt.loadStateDict(optimizerStateFromTensors({ tensors: state, metadata }));
}

/** readHeadShard, then the rows copied into `head` and their state into `headOpt`. */
export function loadHeadShard(dir: string, savedWorld: number, head: PartialFC, headOpt: AnyOptimizer): void {
  T.noGrad(() => T.scope(() => applyHeadShard(readHeadShard(dir, savedWorld, head), head, headOpt)));
}
