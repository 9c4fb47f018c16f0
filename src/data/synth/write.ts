// `mfr synth`: a synthetic face dataset written as an image folder or an InsightFace pack.
import jpegTurbo from "@julusian/jpeg-turbo";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import path from "node:path";
import { hash32 } from "../rng.ts";
import { startWorker } from "../pool.ts";
import { writeRecDataset } from "../rec-dataset.ts";
import { sampleIdentity, sampleVariation } from "./face.ts";
import { renderFace } from "./render.ts";
import type { SynthJob } from "./worker.ts";

export interface SynthOptions {
  out: string;
  identities: number;
  imagesPerIdentity: number;
  seed: number;
  format?: "folder" | "rec";
  /** Image side in pixels (default 112, the ArcFace crop). */
  size?: number;
  onImage?: (done: number, total: number) => void;
  /**
   * Worker threads rendering in parallel (default: up to 4 on datasets of 2000+ images, none on
   * smaller ones, where starting threads costs more than it saves). The output is the same.
   */
  workers?: number;
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
  const workers = o.workers ?? (total >= 2000 ? Math.min(4, availableParallelism()) : 0);
  const pool = workers > 0 ? new SynthPool(workers, o.seed, size) : undefined;
  // Identity id's encoded images, rendered here or by the pool (which works ahead, in order).
  const identity = async (id: number): Promise<Uint8Array[]> => {
    const imgs = pool ? await pool.get(id, o.imagesPerIdentity, o.identities) : [];
    if (!pool) for (let k = 0; k < o.imagesPerIdentity; k++) imgs.push(image(id, k));
    else for (let k = 0; k < imgs.length; k++) o.onImage?.(++done, total);
    return imgs;
  };
  try {
    if ((o.format ?? "folder") === "rec") {
      const ids = async function* (): AsyncGenerator<{ images: Iterable<Uint8Array> }> {
        for (let id = 0; id < o.identities; id++) yield { images: await identity(id) };
      };
      return await writeRecDataset(o.out, ids(), { imageSize: [size, size] });
    }
    const width = Math.max(6, String(o.identities - 1).length);
    for (let id = 0; id < o.identities; id++) {
      const dir = path.join(o.out, String(id).padStart(width, "0"));
      mkdirSync(dir, { recursive: true });
      const imgs = await identity(id);
      imgs.forEach((b, k) => writeFileSync(path.join(dir, `${String(k).padStart(3, "0")}.jpg`), b));
    }
    return { images: total, identities: o.identities };
  } finally {
    await pool?.close();
  }
}

/** Worker threads rendering whole identities, requested in order and kept a few ahead. */
class SynthPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<
    number,
    { resolve: (imgs: Uint8Array[]) => void; reject: (e: Error) => void }
  >();
  private readonly results = new Map<number, Promise<Uint8Array[]>>();
  private next = 0;
  private failure: Error | undefined;

  constructor(
    n: number,
    private readonly seed: number,
    private readonly size: number,
  ) {
    this.workers = Array.from({ length: n }, () => {
      const w = startWorker(new URL("./worker.ts", import.meta.url));
      w.on("message", (m: { id: number; images: Uint8Array[] }) => this.waiting.get(m.id)?.resolve(m.images));
      w.on("error", (e) => {
        this.failure = e;
        for (const p of this.waiting.values()) p.reject(e);
      });
      return w;
    });
  }

  get(id: number, images: number, identities: number): Promise<Uint8Array[]> {
    if (this.failure) return Promise.reject(this.failure);
    // Keep every worker busy with a few identities ahead of the writer.
    while (this.next < identities && this.next < id + 4 * this.workers.length) {
      const j = this.next++;
      this.results.set(
        j,
        new Promise((resolve, reject) => {
          this.waiting.set(j, { resolve, reject });
          const job: SynthJob = { seed: this.seed, id: j, images, size: this.size };
          this.workers[j % this.workers.length]!.postMessage(job);
        }),
      );
    }
    const r = this.results.get(id);
    if (!r) return Promise.reject(new Error(`synth: identity ${id} was never requested`));
    this.results.delete(id);
    return r.finally(() => this.waiting.delete(id));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
