// A checkpoint's files, as two ranks write and read them (in one process: each rank's calls in
// turn, over a stand-in group whose store is a Map): every byte has one checksum (the manifest's,
// gathered from the ranks), each rank reads and checks only its own files on resume, a damaged
// file is refused before anything changes, and checkpoints written before (a checksum inside each
// safetensors file as well) still load.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as T from "../../src/torch/index.ts";
import { ProcessGroup } from "../../src/distributed/index.ts";
import { PartialFC } from "../../src/head/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { buildBackbone } from "../../src/models/index.ts";
import {
  CorruptCheckpointError,
  type TrainState,
  createGradientSync,
  loadCheckpoint,
  saveCheckpoint,
  verifyCheckpoint,
} from "../../src/train/index.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-ckpt-files-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * Rank `rank` of 2 as saveCheckpoint and loadCheckpoint see it, the ranks' calls made in turn:
 * barriers are no-ops, and a gather returns what the ranks before it put in `shared`.
 */
function rankOf(rank: number, shared: Map<number, Uint8Array>): ProcessGroup {
  const group = {
    rank,
    worldSize: 2,
    barrier: () => ({ wait: () => undefined }),
    allGather: (t: T.Tensor) => {
      shared.set(rank, t.data() as Uint8Array);
      return { wait: () => [0, 1].map((q) => T.tensor(shared.get(q) ?? new Uint8Array(t.numel))) };
    },
  };
  return group as unknown as ProcessGroup;
}

function state(group: ProcessGroup, seed: number): TrainState {
  T.manualSeed(seed);
  const backbone = buildBackbone("[1,1,1,1]", { width: 0.125, numFeatures: 16 });
  // The backbone's optimizer on its own (the sync's collectives play no part in the files).
  const sync = createGradientSync(
    ProcessGroup.single(),
    [{ params: backbone.parameters() }],
    (g) => new SGD(g, { lr: 0.1, momentum: 0.9 }),
    { zero: 0, overlap: false },
  );
  const head = new PartialFC(group, {
    numClasses: 10,
    embeddingSize: 16,
    sampleRate: 1,
    margin: { s: 64, m3: 0.4 },
    seed,
  });
  return { backbone, sync, head, headOpt: new SGD([head.weight], { lr: 0.1, momentum: 0.9 }) };
}

const flat = (s: TrainState): Float32Array =>
  T.scope(() =>
    T.cat([...s.backbone.parameters(), s.head.weight].map((p) => p.detach().flatten())).data(),
  ) as Float32Array;

const sha256 = (file: string): string => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/** Saves step 3 of a 2-rank run into `runDir`; returns the checkpoint folder and the states. */
function saveTwoRanks(runDir: string): { dir: string; saved: TrainState[] } {
  const store = new Map<number, Uint8Array>();
  const saved = [0, 1].map((r) => state(rankOf(r, store), 7));
  // Rank 1 first: rank 0 collects its digests from the store when it seals the checkpoint.
  saveCheckpoint(rankOf(1, store), runDir, 3, saved[1]!);
  const dir = saveCheckpoint(rankOf(0, store), runDir, 3, saved[0]!);
  return { dir, saved };
}

test("each file has one checksum, the manifest's, gathered from every rank", () => {
  const { dir } = saveTwoRanks(path.join(tmp, "one-sum"));
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as {
    files: Record<string, string>;
  };
  assert.deepEqual(Object.keys(manifest.files).sort(), [
    "backbone.safetensors",
    "head-rank0.safetensors",
    "head-rank1.safetensors",
    "state-rank0.json",
    "state-rank1.json",
  ]);
  for (const [f, sum] of Object.entries(manifest.files)) {
    assert.equal(sha256(path.join(dir, f)), sum, f);
    if (f.endsWith(".safetensors"))
      assert.equal(T.readSafetensorsMetadata(path.join(dir, f))["mfr.sha256"], undefined, f);
  }
  assert.equal(verifyCheckpoint(dir).worldSize, 2);
});

test("a rank resumes from its own files: another rank's damaged shard does not stop it", () => {
  const { dir, saved } = saveTwoRanks(path.join(tmp, "own"));
  for (const f of ["head-rank1.safetensors", "state-rank1.json"]) {
    const bytes = fs.readFileSync(path.join(dir, f));
    bytes[bytes.length - 2] = bytes.at(-2)! ^ 0xff;
    fs.writeFileSync(path.join(dir, f), bytes);
  }
  const store = new Map<number, Uint8Array>();
  const fresh = state(rankOf(0, store), 99);
  const r = loadCheckpoint(rankOf(0, store), dir, fresh);
  assert.equal(r.step, 3);
  assert.deepEqual(flat(fresh), flat(saved[0]!));
  const one = state(rankOf(1, store), 99);
  assert.throws(
    () => loadCheckpoint(rankOf(1, store), dir, one),
    (e: Error) =>
      e instanceof CorruptCheckpointError && /head-rank1\.safetensors: checksum mismatch/.test(e.message),
  );
});

test("a damaged file is refused by name before anything is loaded", () => {
  const { dir } = saveTwoRanks(path.join(tmp, "damaged"));
  const file = path.join(dir, "head-rank0.safetensors");
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] = bytes.at(-1)! ^ 0x01;
  fs.writeFileSync(file, bytes);
  const fresh = state(rankOf(0, new Map<number, Uint8Array>()), 99);
  const before = flat(fresh);
  assert.throws(
    () => loadCheckpoint(rankOf(0, new Map<number, Uint8Array>()), dir, fresh),
    (e: Error) => e instanceof CorruptCheckpointError && e.message.startsWith(`${file}: checksum mismatch`),
  );
  assert.deepEqual(flat(fresh), before, "the backbone, read first, was not applied");
});

test("a checkpoint written with a checksum inside each safetensors file too still loads", () => {
  const { dir, saved } = saveTwoRanks(path.join(tmp, "old"));
  const manifestFile = path.join(dir, "manifest.json");
  const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as { files: Record<string, string> };
  for (const f of Object.keys(manifest.files).filter((n) => n.endsWith(".safetensors"))) {
    T.scope(() => {
      const { tensors, metadata } = T.loadSafetensors(path.join(dir, f));
      T.saveSafetensors(path.join(dir, f), tensors, metadata);
    });
    assert.notEqual(T.readSafetensorsMetadata(path.join(dir, f))["mfr.sha256"], undefined);
    manifest.files[f] = sha256(path.join(dir, f));
  }
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  const fresh = state(rankOf(1, new Map<number, Uint8Array>()), 99);
  loadCheckpoint(rankOf(1, new Map<number, Uint8Array>()), dir, fresh);
  assert.deepEqual(flat(fresh), flat(saved[1]!));
});
