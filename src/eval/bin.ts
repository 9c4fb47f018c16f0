// InsightFace verification sets (lfw.bin, cfp_fp.bin, agedb_30.bin): a pickled pair
// (JPEG bytes list, issame list), two images per pair. The pickle is read by mfr's safe
// unpickler with no globals allowed except _codecs.encode (how Python 3 writes bytes at
// protocol 2; implemented in JS, it runs nothing from the file): GLOBAL, STACK_GLOBAL and REDUCE
// of anything else are refused, so a malicious file cannot run code.
import fs from "node:fs";
import sharp from "sharp";
import * as T from "../torch/index.ts";
import { type KFoldAccuracy, flipSumNormalise, kfoldAccuracy } from "./kfold.ts";

export interface VerificationSet {
  file: string;
  /** Encoded images (JPEG or PNG), 2 per pair. */
  images: Uint8Array[];
  issame: boolean[];
}

const BIN_GLOBALS = { "_codecs.encode": T.DATA_GLOBALS["_codecs.encode"]! };

/** Parses the bytes of a .bin verification set (file names the source in errors). */
export function parseVerificationSet(bytes: Uint8Array, file: string): VerificationSet {
  const value = T.unpickle(bytes, { source: file, globals: BIN_GLOBALS });
  if (!Array.isArray(value) || value.length !== 2)
    throw new Error(`${file}: not a verification set (expected a pickled pair (images, issame))`);
  const [images, issame] = value;
  if (!Array.isArray(images) || !images.every((x) => x instanceof Uint8Array))
    throw new Error(`${file}: the first element must be a list of encoded images (bytes)`);
  if (!Array.isArray(issame) || !issame.every((x) => typeof x === "boolean" || x === 0 || x === 1))
    throw new Error(`${file}: the second element must be a list of booleans (issame)`);
  if (images.length !== 2 * issame.length)
    throw new Error(`${file}: ${images.length} images for ${issame.length} pairs (want 2 per pair)`);
  return { file, images: images as Uint8Array[], issame: issame.map((x) => x === true || x === 1) };
}

export function loadVerificationSet(file: string): VerificationSet {
  return parseVerificationSet(fs.readFileSync(file), file);
}

/**
 * Decodes images to float32 [count, 3, size, size], RGB, scaled as arcface_torch feeds its
 * backbone: ((x / 255) - 0.5) / 0.5. Images of another size are resized (short side, centre crop).
 */
export async function decodeFaces(
  images: readonly Uint8Array[],
  size: number,
  source = "image",
): Promise<Float32Array> {
  const plane = size * size;
  const out = new Float32Array(images.length * 3 * plane);
  await Promise.all(
    images.map(async (bytes, n) => {
      let img = sharp(bytes).removeAlpha().toColourspace("srgb");
      const meta = await sharp(bytes)
        .metadata()
        .catch(() => {
          throw new Error(`${source} #${n}: not a decodable image`);
        });
      if (meta.width !== size || meta.height !== size) img = img.resize(size, size, { fit: "cover" });
      const rgb = await img.raw().toBuffer();
      if (rgb.length !== 3 * plane)
        throw new Error(`${source} #${n}: decoded to ${rgb.length} bytes, want ${3 * plane}`);
      const base = n * 3 * plane;
      for (let p = 0; p < plane; p++)
        for (let c = 0; c < 3; c++) out[base + c * plane + p] = (rgb[3 * p + c]! / 255 - 0.5) / 0.5;
    }),
  );
  return out;
}

/** Mirrors [count, 3, h, w] images left-right (dim 3), as mx.ndarray.flip(axis=2) on CHW. */
export function flipHorizontal(images: Float32Array, size: number): Float32Array {
  const out = new Float32Array(images.length);
  for (let row = 0; row < images.length / size; row++) {
    const o = row * size;
    for (let x = 0; x < size; x++) out[o + x] = images[o + size - 1 - x]!;
  }
  return out;
}

/** A backbone as the verifier sees it: images [count, 3, size, size] -> embeddings [count, dim]. */
export type EmbedFn = (images: Float32Array, count: number) => Float32Array | Promise<Float32Array>;

export interface SetVerification extends KFoldAccuracy {
  file: string;
  pairs: number;
  /** Mean L2 norm of the raw embeddings (both flips), arcface_torch's "XNorm". */
  xnorm: number;
}

/** Embeddings of images and of their mirror images, row by row, and the sum of their L2 norms. */
export interface FlipEmbeddings {
  first: Float32Array;
  second: Float32Array;
  /** Embedding size (0 when there were no images). */
  dim: number;
  normSum: number;
}

/**
 * Decodes and embeds images and their mirror images batch by batch (memory stays one batch), so
 * that a part of a set can be embedded on its own (each rank of a job its share).
 */
export async function embedWithFlips(
  images: readonly Uint8Array[],
  embed: EmbedFn,
  opts: { batchSize?: number; imageSize?: number; source?: string } = {},
): Promise<FlipEmbeddings> {
  const size = opts.imageSize ?? 112;
  const batch = opts.batchSize ?? 64;
  const n = images.length;
  let dim = 0;
  let first = new Float32Array(0);
  let second = new Float32Array(0);
  let normSum = 0;
  for (let a = 0; a < n; a += batch) {
    const count = Math.min(batch, n - a);
    const imgs = await decodeFaces(images.slice(a, a + count), size, opts.source);
    const e0 = await embed(imgs, count);
    const e1 = await embed(flipHorizontal(imgs, size), count);
    if (dim === 0) {
      dim = e0.length / count;
      if (!Number.isInteger(dim) || dim < 1)
        throw new Error(`embed returned ${e0.length} values for ${count} images`);
      first = new Float32Array(n * dim);
      second = new Float32Array(n * dim);
    }
    if (e0.length !== count * dim || e1.length !== count * dim)
      throw new Error(`embed returned ${e0.length} and ${e1.length} values, want ${count * dim}`);
    first.set(e0, a * dim);
    second.set(e1, a * dim);
    for (const e of [e0, e1])
      for (let r = 0; r < count; r++) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += e[r * dim + d]! ** 2;
        normSum += Math.sqrt(s);
      }
  }
  return { first, second, dim, normSum };
}

/** arcface_torch's figures for a set from the flip embeddings of all its images, in order. */
export function scoreVerificationSet(set: VerificationSet, e: FlipEmbeddings, folds = 10): SetVerification {
  const n = set.images.length;
  if (e.first.length !== n * e.dim || e.second.length !== n * e.dim)
    throw new Error(`${set.file}: ${e.first.length / Math.max(1, e.dim)} embeddings for ${n} images`);
  const result = kfoldAccuracy(flipSumNormalise(e.first, e.second, e.dim), e.dim, set.issame, folds);
  return { file: set.file, pairs: set.issame.length, xnorm: e.normSum / (2 * n), ...result };
}

/**
 * 10-fold accuracy with flip-sum of a verification set, as arcface_torch's CallBackVerification
 * reports it.
 */
export async function verifySet(
  set: VerificationSet,
  embed: EmbedFn,
  opts: { batchSize?: number; imageSize?: number; folds?: number } = {},
): Promise<SetVerification> {
  const e = await embedWithFlips(set.images, embed, { ...opts, source: set.file });
  return scoreVerificationSet(set, e, opts.folds ?? 10);
}
