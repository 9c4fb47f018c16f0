// Faces to embed or to verify an export with, as float32 NCHW batches normalised like training
// ((x − 127.5) / 127.5): a dataset mfr reads (a .rec, an <identity>/<image> folder, a list file),
// a plain folder of images, or one image file; and, when no data is at hand, mfr's synthetic faces.
// Decoding runs in src/data's worker pool, in dataset order, without augmentation.
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { type Dataset, DataLoader, type SampleLocator, openDataset, synthFace } from "../data/index.ts";
import { INPUT_SIZE } from "../models/index.ts";

const IMAGE_EXT = /\.(jpe?g|png|webp|bmp|tiff?)$/i;
const PLANE = INPUT_SIZE * INPUT_SIZE;
/** Floats in one 3×112×112 image. */
export const IMAGE_FLOATS = 3 * PLANE;

/** Images without identities (a flat folder or one file): labels are -1. */
class ImageFiles implements Dataset {
  readonly kind = "list" as const;
  readonly numClasses = undefined;
  readonly imageSize = undefined;
  constructor(
    readonly source: string,
    private readonly files: string[],
  ) {}
  get length(): number {
    return this.files.length;
  }
  locate(i: number): SampleLocator {
    return { kind: "file", file: this.files[i]!, label: -1 };
  }
  labelOf(): number {
    return -1;
  }
  describe(i: number): string {
    return this.files[i]!;
  }
  close(): void {}
}

/**
 * Opens what `mfr embed --data` names: a dataset (labels known), or images without identities
 * (a folder holding image files and no sub-folders, or a single image file).
 */
export function openImageSource(p: string): { dataset: Dataset; labelled: boolean } {
  if (!existsSync(p)) throw new Error(`${p}: no such file or folder`);
  const st = statSync(p);
  if (st.isFile() && IMAGE_EXT.test(p)) return { dataset: new ImageFiles(p, [p]), labelled: false };
  if (st.isDirectory()) {
    const entries = readdirSync(p, { withFileTypes: true });
    const hasDirs = entries.some((e) => e.isDirectory());
    const images = entries.filter((e) => e.isFile() && IMAGE_EXT.test(e.name)).map((e) => e.name);
    if (!hasDirs && !existsSync(path.join(p, "train.rec"))) {
      if (images.length === 0) throw new Error(`${p}: no images, sub-folders or train.rec found`);
      images.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return {
        dataset: new ImageFiles(
          p,
          images.map((f) => path.join(p, f)),
        ),
        labelled: false,
      };
    }
  }
  return { dataset: openDataset(p), labelled: true };
}

export interface ImageBatch {
  /** [n, 3, 112, 112] float32, a fresh (unshared) array the caller owns. */
  images: Float32Array;
  n: number;
  labels: Int32Array;
  /** Dataset index of the first image. */
  start: number;
}

export interface ReadOptions {
  batchSize: number;
  /** Decode worker threads (default 2). */
  workers?: number;
  /** Stop after this many images. */
  limit?: number;
}

/** Every image of a dataset once, in order, in batches of `batchSize` (the last may be short). */
export async function* readImages(dataset: Dataset, o: ReadOptions): AsyncGenerator<ImageBatch> {
  const total = Math.min(dataset.length, o.limit ?? Infinity);
  const batchSize = Math.max(1, Math.min(o.batchSize, total));
  let loader: DataLoader;
  try {
    loader = await DataLoader.open(dataset, {
      batchSize,
      shuffle: false,
      tail: "pad", // the last batch wraps around to the start; the extra rows are dropped here
      flipProb: 0,
      maskProb: 0,
      // An embedding must belong to its image: a bad image is an error, never silently replaced.
      maxBadFraction: 0,
      workers: o.workers ?? 2,
    });
  } catch (e) {
    dataset.close(); // the loader owns (and closes) the dataset only once it exists
    throw e;
  }
  try {
    let start = 0;
    for await (const b of loader.epoch(0)) {
      const n = Math.min(b.shape[0], total - start);
      if (n <= 0) break;
      yield {
        images: Float32Array.from((b.images as Float32Array).subarray(0, n * IMAGE_FLOATS)),
        n,
        labels: b.labels.slice(0, n),
        start,
      };
      start += n;
      if (start >= total) break;
    }
  } finally {
    await loader.close();
  }
}

/** The first `n` images of a dataset (repeated when it has fewer), as one array. */
export async function firstImages(source: string, n: number): Promise<Float32Array> {
  const { dataset } = openImageSource(source);
  const out = new Float32Array(n * IMAGE_FLOATS);
  let filled = 0;
  for await (const b of readImages(dataset, { batchSize: n, workers: 1, limit: n })) {
    out.set(b.images.subarray(0, b.n * IMAGE_FLOATS), filled * IMAGE_FLOATS);
    filled += b.n;
  }
  for (let i = filled; i < n; i++)
    out.copyWithin(i * IMAGE_FLOATS, (i % filled) * IMAGE_FLOATS, ((i % filled) + 1) * IMAGE_FLOATS);
  return out;
}

/** `n` of mfr's synthetic aligned faces (distinct identities), normalised like training input. */
export function syntheticFaces(n: number, seed = 7): Float32Array {
  const out = new Float32Array(n * IMAGE_FLOATS);
  for (let i = 0; i < n; i++) {
    const { rgb } = synthFace(seed, i, 0, INPUT_SIZE);
    const base = i * IMAGE_FLOATS;
    for (let p = 0; p < PLANE; p++)
      for (let c = 0; c < 3; c++) out[base + c * PLANE + p] = (rgb[3 * p + c]! - 127.5) / 127.5;
  }
  return out;
}

/** Uniform noise in [-1, 1] (the normalised input range), from a fixed seed. */
export function randomImages(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n * IMAGE_FLOATS);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    // xorshift32: deterministic and independent of libtorch's global generator.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

/** Mirrors [n, 3, 112, 112] images left-right (a new array). */
export function flipImages(images: Float32Array): Float32Array {
  const out = new Float32Array(images.length);
  for (let row = 0; row < images.length; row += INPUT_SIZE)
    for (let x = 0; x < INPUT_SIZE; x++) out[row + x] = images[row + INPUT_SIZE - 1 - x]!;
  return out;
}
