// `mfr synth`: a synthetic face dataset written as an image folder or an InsightFace pack.
import jpegTurbo from "@julusian/jpeg-turbo";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { hash32 } from "../rng.ts";
import { writeRecDataset } from "../rec-dataset.ts";
import { sampleIdentity, sampleVariation } from "./face.ts";
import { renderFace } from "./render.ts";

export interface SynthOptions {
  out: string;
  identities: number;
  imagesPerIdentity: number;
  seed: number;
  format?: "folder" | "rec";
  /** Image side in pixels (default 112, the ArcFace crop). */
  size?: number;
  onImage?: (done: number, total: number) => void;
}

/** Image `k` of identity `id`: HWC RGB bytes and the JPEG quality chosen for it. */
export function synthFace(
  seed: number,
  id: number,
  k: number,
  size = 112,
): { rgb: Uint8Array; quality: number } {
  const v = sampleVariation(seed, id, k);
  return {
    rgb: renderFace(sampleIdentity(seed, id), v, size, hash32(seed, id, k, 0x9e)),
    quality: v.quality,
  };
}

/** Baseline JPEG (4:2:0), as face datasets are stored. */
export function encodeJpeg(rgb: Uint8Array, size: number, quality = 92): Buffer {
  return jpegTurbo.compressSync(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), {
    format: jpegTurbo.FORMAT_RGB,
    width: size,
    height: size,
    quality,
    subsampling: jpegTurbo.SAMP_420,
  });
}

/** Writes the dataset; identities are folders 000000.. (sorted order = label order). */
export async function synthesizeDataset(o: SynthOptions): Promise<{ images: number; identities: number }> {
  for (const k of ["identities", "imagesPerIdentity"] as const)
    if (!Number.isInteger(o[k]) || o[k] < 1)
      throw new Error(`synth.${k} must be a positive integer, got ${o[k]}`);
  const size = o.size ?? 112;
  const total = o.identities * o.imagesPerIdentity;
  let done = 0;
  const image = (id: number, k: number): Buffer => {
    const f = synthFace(o.seed, id, k, size);
    const jpg = encodeJpeg(f.rgb, size, f.quality);
    o.onImage?.(++done, total);
    return jpg;
  };
  mkdirSync(o.out, { recursive: true });
  if ((o.format ?? "folder") === "rec") {
    const ids = function* (): Generator<{ images: Iterable<Uint8Array> }> {
      for (let id = 0; id < o.identities; id++)
        yield {
          images: (function* () {
            for (let k = 0; k < o.imagesPerIdentity; k++) yield image(id, k);
          })(),
        };
    };
    return writeRecDataset(o.out, ids(), { imageSize: [size, size] });
  }
  const width = Math.max(6, String(o.identities - 1).length);
  for (let id = 0; id < o.identities; id++) {
    const dir = path.join(o.out, String(id).padStart(width, "0"));
    mkdirSync(dir, { recursive: true });
    for (let k = 0; k < o.imagesPerIdentity; k++)
      writeFileSync(path.join(dir, `${String(k).padStart(3, "0")}.jpg`), image(id, k));
  }
  return { images: total, identities: o.identities };
}
