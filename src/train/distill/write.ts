// `mfr distill features`: the teacher's normalised embedding of every record, for every image
// variant a run can draw (flip × {unmasked, mask variant 1..K}), written once into a feature store
// (./store.ts). Under `mfr launch` each rank writes its own contiguous range of records into its
// own part; a part grows by whole chunks of records, fsynced, so a killed job resumes where each
// part's length says it stopped. Rank 0 seals the store with the manifest once every part is done.
import fs from "node:fs";
import path from "node:path";
import * as T from "../../torch/index.ts";
import { type ProcessGroup, placementFromEnv, ProcessGroup as Group } from "../../distributed/index.ts";
import { DEFAULT_MASK_TILES, DataLoader, type JpegMode, openDataset } from "../../data/index.ts";
import { batchToTensors } from "../../data/tensors.ts";
import {
  FEATURE_STORE_FORMAT,
  STORE_MANIFEST,
  type StoreAugment,
  type StoreManifest,
  datasetIdentity,
  partFile,
  rowInRecord,
  rowsPerRecord,
} from "./store.ts";
import { type Teacher, openTeacher } from "./teacher.ts";

export interface WriteFeaturesOptions {
  teacher: string;
  data: string;
  out: string;
  /** Records per teacher forward (default 64). */
  batchSize?: number;
  workers?: number;
  imageSize?: number;
  jpegMode?: JpegMode;
  /** Masked variants per record (default 2; 0: the store serves runs without masks only). */
  maskVariants?: number;
  /** Seed of the per-record masks and of the mask bank (default 0). */
  maskSeed?: number;
  /** Store flipped rows too (default true; false: runs with data.flipProb 0 only). */
  flips?: boolean;
  device?: "auto" | "cpu" | "cuda";
  group?: ProcessGroup;
  onnx?: (file: string) => Promise<Teacher>;
  /** Records done on this rank so far, of its total (resumed ones included). */
  onProgress?: (done: number, total: number) => void;
}

export interface WriteFeaturesResult {
  /** The manifest (rank 0), or undefined on the other ranks. */
  manifest?: StoreManifest;
  /** Records this rank found already written (a resumed job). */
  resumedFrom: number;
  /** Records that could not be decoded (zero rows; the trainer substitutes such samples). */
  bad: string[];
}

export async function writeFeatureStore(o: WriteFeaturesOptions): Promise<WriteFeaturesResult> {
  const device = T.resolveDevice(o.device ?? "auto", o.group ? 0 : placementFromEnv().localRank);
  const group = o.group ?? Group.init(undefined, { device });
  const ds = openDataset(o.data);
  let teacher: Teacher | undefined;
  try {
    const K = o.maskVariants ?? 2;
    if (!Number.isInteger(K) || K < 0 || K > 255)
      throw new Error(`--mask-variants must be an integer in 0..255, got ${K}`);
    const augment: StoreAugment = {
      imageSize: o.imageSize ?? 112,
      jpegMode: o.jpegMode ?? "fast-idct",
      maskTiles: DEFAULT_MASK_TILES,
      recordMasks: K > 0 ? { seed: o.maskSeed ?? 0, variants: K } : null,
      flips: o.flips ?? true,
    };
    teacher = await openTeacher(o.teacher, { device, ...(o.onnx ? { onnx: o.onnx } : {}) });
    const base = {
      format: FEATURE_STORE_FORMAT,
      dataset: {
        source: path.resolve(o.data),
        kind: ds.kind,
        length: ds.length,
        identity: datasetIdentity(ds),
      },
      teacher: { source: teacher.file, sha256: teacher.sha256(), embeddingSize: teacher.embeddingSize },
      augment,
      dtype: "f16" as const,
    };
    fs.mkdirSync(o.out, { recursive: true });
    checkResumable(o.out, base, group.worldSize);
    group.barrier().wait();
    const r = group.rank;
    const start = Math.floor((ds.length * r) / group.worldSize);
    const end = Math.floor((ds.length * (r + 1)) / group.worldSize);
    const res = await writePart(
      o,
      ds,
      teacher,
      augment,
      path.join(o.out, partFile(r, group.worldSize)),
      start,
      end,
    );
    group.barrier().wait();
    if (r !== 0) return res;
    const parts = Array.from({ length: group.worldSize }, (_, q) => {
      const file = partFile(q, group.worldSize);
      const s = Math.floor((ds.length * q) / group.worldSize);
      const count = Math.floor((ds.length * (q + 1)) / group.worldSize) - s;
      return { file, start: s, count, sha256: T.sha256File(path.join(o.out, file)) };
    });
    const manifest: StoreManifest = { ...base, parts };
    T.writeAtomic(path.join(o.out, STORE_MANIFEST), (fd) =>
      fs.writeSync(fd, JSON.stringify(manifest, null, 2) + "\n"),
    );
    return { ...res, manifest };
  } finally {
    await teacher?.close();
    ds.close();
    if (!o.group) group.destroy();
  }
}

/**
 * A store folder being resumed must have been started with the same dataset, teacher, variants
 * and world size (the parts' ranges depend on it): `progress.json` says what it was started with.
 */
function checkResumable(out: string, base: Omit<StoreManifest, "parts">, worldSize: number): void {
  const file = path.join(out, "progress.json");
  const want = { ...base, worldSize };
  if (fs.existsSync(file)) {
    const have = T.readJsonFile(file) as Record<string, unknown>;
    for (const k of Object.keys(want) as (keyof typeof want)[])
      if (JSON.stringify(have[k]) !== JSON.stringify(want[k]))
        throw new Error(
          `${file}: this store was started with a different ${k} (${JSON.stringify(have[k])}); ` +
            `write to another folder, or remove ${out} to start over`,
        );
    return;
  }
  T.writeAtomic(file, (fd) => fs.writeSync(fd, JSON.stringify(want, null, 2) + "\n"));
}

async function writePart(
  o: WriteFeaturesOptions,
  ds: ReturnType<typeof openDataset>,
  teacher: Teacher,
  a: StoreAugment,
  file: string,
  start: number,
  end: number,
): Promise<WriteFeaturesResult> {
  const D = teacher.embeddingSize;
  const rows = rowsPerRecord(a);
  const recordBytes = rows * D * 2;
  const total = end - start;
  // Whole records only: a tail a kill cut short is written again.
  const have = fs.existsSync(file) ? Math.min(total, Math.floor(fs.statSync(file).size / recordBytes)) : 0;
  const fd = fs.openSync(file, fs.existsSync(file) ? "r+" : "w");
  fs.ftruncateSync(fd, have * recordBytes);
  const B = o.batchSize ?? 64;
  const loader = await DataLoader.open(ds, {
    // Only decodeRecords is used: the sampler's batch must merely fit the dataset.
    batchSize: Math.min(B, ds.length),
    workers: o.workers ?? 2,
    imageSize: a.imageSize,
    jpegMode: a.jpegMode,
    flipProb: 0,
    maskProb: 0,
    ...(a.recordMasks ? { recordMasks: a.recordMasks } : {}),
    // The trainer's path: u8 NHWC rows, normalised in libtorch (batchToTensors).
    dtype: "u8",
    layout: "nhwc",
  });
  const bad: string[] = [];
  try {
    o.onProgress?.(have, total);
    for (let at = start + have; at < end; at += B) {
      const n = Math.min(B, end - at);
      const records = Int32Array.from({ length: n }, (_, i) => at + i);
      const chunk = new Uint16Array(n * rows * D);
      for (const flip of a.flips ? [false, true] : [false])
        for (let v = 0; v <= (a.recordMasks?.variants ?? 0); v++) {
          const d = await loader.decodeRecords(records, flip, v);
          bad.push(...d.errors);
          const zeros = new Uint8Array(n);
          const bits = await embedRows(teacher, { ...d, records, zeros });
          const row = rowInRecord(a, flip, v);
          for (let i = 0; i < n; i++)
            if (d.ok[i]) chunk.set(bits.subarray(i * D, (i + 1) * D), (i * rows + row) * D);
        }
      T.writeAll(fd, new Uint8Array(chunk.buffer));
      fs.fsyncSync(fd);
      o.onProgress?.(at + n - start, total);
    }
  } finally {
    fs.closeSync(fd);
    await loader.close();
  }
  return { resumedFrom: have, bad };
}

/** The teacher's L2-normalised embeddings of decoded rows, as fp16 bits [n, D]. */
async function embedRows(
  teacher: Teacher,
  d: {
    images: Float32Array | Uint8Array;
    shape: [number, number, number, number];
    records: Int32Array;
    zeros: Uint8Array;
  },
): Promise<Uint16Array> {
  const t = batchToTensors({
    epoch: 0,
    step: 0,
    images: d.images,
    shape: d.shape,
    labels: new Int32Array(d.records.length),
    masked: d.zeros,
    maskVariant: d.zeros,
    flipped: d.zeros,
    indices: d.records,
  });
  let e: T.Tensor | undefined;
  try {
    e = await teacher.embed(t.x);
    const unit = e;
    return T.scope(() => T.normalize(unit, 1).to("f16").to("cpu").contiguous().data() as Uint16Array);
  } finally {
    e?.dispose();
    for (const u of [t.x, t.y, t.masked]) u.dispose();
  }
}
