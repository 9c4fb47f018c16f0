// The training data loader: sampler order -> decode workers -> contiguous batches, prefetched.
//
// Every random choice for a sample (flip, mask, mask look) is a function of (seed, epoch, rank,
// position in the epoch), so a resumed run reproduces batches exactly, whatever the worker timing.
// A sample that cannot be read or decoded is reported once through a 'warning' event and replaced
// by a deterministic substitute; the run stops with an error naming the config key only when more
// than `maxBadFraction` of the dataset has proved bad.
import { EventEmitter } from "node:events";
import type { Dataset } from "./dataset.ts";
import {
  type DecoderChoice,
  type JpegMode,
  type Layout,
  type OutputDType,
  type OutputSpec,
  sampleElements,
} from "./decode.ts";
import { openDataset } from "./open.ts";
import { DecodePool } from "./pool.ts";
import { JPEG_MODES } from "./turbojpeg.ts";
import { Rng, hash32 } from "./rng.ts";
import { type SamplerOptions, ShardedSampler } from "./sampler.ts";
import type { ItemResult, TaskItem } from "./worker-protocol.ts";

export interface LoaderOptions extends Omit<SamplerOptions, "length"> {
  /** Decode worker threads (default 2). */
  workers?: number;
  /** Batches decoded ahead of the consumer (default 2 per worker). */
  prefetch?: number;
  /** Output side in pixels (default 112); other sizes are resized. */
  imageSize?: number;
  /** f32 normalised (x - 127.5) / 127.5 (default) or raw u8. */
  dtype?: OutputDType;
  /** nchw (default) or nhwc. */
  layout?: Layout;
  /** Probability of a horizontal flip (default 0.5). */
  flipProb?: number;
  /** Probability of a synthetic mask (default 0.35, as the recipe). */
  maskProb?: number;
  /** Mask tiles per mask kind rendered in each worker (default DEFAULT_MASK_TILES, 24). */
  maskVariants?: number;
  /** Largest tolerated fraction of bad samples before the run stops (default 0.001). */
  maxBadFraction?: number;
  decoder?: DecoderChoice;
  /**
   * libjpeg-turbo's IDCT and chroma upsampling for JPEGs at the output size (./turbojpeg.ts):
   * "fast-idct" (default: the fast IDCT, as @julusian/jpeg-turbo has always decoded here; max 16,
   * mean 1.0 off the accurate decode), "accurate" (the pixels PIL and sharp decode, ~2% more time)
   * or
   * "fast" (also nearest chroma upsampling: max 75, mean 1.6 off; ~6% less time per image).
   * Where only @julusian/jpeg-turbo's addon is available the decode is always "fast-idct".
   */
  jpegMode?: JpegMode;
  /**
   * Recycle batch buffers (default true): a batch's `images` are overwritten once the next batch
   * is requested, so copy what you keep (batchToTensors copies). First-touching fresh memory for
   * every batch costs more than decoding it (page faults), hence the default. false: every batch
   * gets its own copy.
   */
  reuseBuffers?: boolean;
  /**
   * Masks fixed per record (for stored teacher features, docs/distillation.md): a masked sample
   * wears one of `variants` masks, the k-th drawn from (seed, record, k), instead of a fresh one,
   * and the mask bank is rendered from `seed`. Whether a sample is masked, and which of its
   * variants, is still drawn per (epoch, position).
   */
  recordMasks?: RecordMasks;
}

/** Mask tiles per mask kind each decode worker renders, unless maskVariants says otherwise. */
export const DEFAULT_MASK_TILES = 24;

export interface RecordMasks {
  seed: number;
  variants: number;
}

/** The mask seed of record `record`'s variant k (1..variants). */
export function recordMaskSeed(m: RecordMasks, record: number, k: number): number {
  return hash32(m.seed, record, k, 0x3d) >>> 1;
}

export interface Batch {
  epoch: number;
  step: number;
  /**
   * One contiguous buffer: [N, 3, H, W] (nchw) or [N, H, W, 3] (nhwc). Shared memory, reused for a
   * later batch once the next one is requested (unless reuseBuffers is false).
   */
  images: Float32Array | Uint8Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  /** 1 where a synthetic mask was drawn. */
  masked: Uint8Array;
  /**
   * 0 unmasked; else which of the record's mask variants (1..variants) with recordMasks, or 1.
   * The loader always sets it; batches made elsewhere (of fixed images) may leave it out.
   */
  maskVariant?: Uint8Array;
  flipped: Uint8Array;
  /** Dataset index of each row (a substitute's index where a bad sample was replaced). */
  indices: Int32Array;
  /**
   * A teacher's embedding of each row's image, [N, D] as fp16 bits, where the trainer added them
   * from a feature store (distillation); the loader itself never sets this.
   */
  teacher?: Uint16Array;
}

export interface BadSampleWarning {
  index: number;
  /** Names the file/record: "…/train.rec record 17" or an image path. */
  where: string;
  reason: string;
  /** Bad samples seen so far in this loader. */
  bad: number;
}

interface Produced {
  batch: Batch;
  sab: SharedArrayBuffer;
}

interface LoaderEvents {
  warning: [BadSampleWarning];
}

export class DataLoader extends EventEmitter<LoaderEvents> {
  readonly sampler: ShardedSampler;
  readonly spec: OutputSpec;
  readonly stats = { batches: 0, samples: 0, bad: 0, workerBusyMs: 0 };
  private readonly bad = new Set<number>();
  private readonly free: SharedArrayBuffer[] = [];
  private readonly prefetch: number;
  private readonly reuse: boolean;

  private constructor(
    readonly dataset: Dataset,
    private readonly pool: DecodePool,
    private readonly o: LoaderOptions,
    spec: OutputSpec,
    sampler: ShardedSampler,
  ) {
    super();
    this.spec = spec;
    this.sampler = sampler;
    this.prefetch = Math.max(1, o.prefetch ?? 2 * pool.size);
    this.reuse = o.reuseBuffers ?? true;
  }

  /**
   * Validates the options, then starts the decode workers. On any error nothing is left running:
   * live workers would keep the process (and, under a launcher, the whole job) from exiting.
   */
  static async open(dataset: Dataset | string, o: LoaderOptions): Promise<DataLoader> {
    const ds = typeof dataset === "string" ? openDataset(dataset) : dataset;
    try {
      return await DataLoader.start(ds, o);
    } catch (e) {
      if (typeof dataset === "string") ds.close();
      throw e;
    }
  }

  private static async start(ds: Dataset, o: LoaderOptions): Promise<DataLoader> {
    const frac = o.maxBadFraction ?? 0.001;
    if (!(frac >= 0 && frac <= 1)) throw new Error(`data.maxBadFraction must be in [0, 1], got ${frac}`);
    for (const k of ["flipProb", "maskProb"] as const) {
      const p = o[k];
      if (p !== undefined && !(p >= 0 && p <= 1)) throw new Error(`data.${k} must be in [0, 1], got ${p}`);
    }
    const jpegMode = o.jpegMode ?? "fast-idct";
    if (!JPEG_MODES.includes(jpegMode))
      throw new Error(`data.jpegMode must be one of ${JPEG_MODES.join(", ")}, got ${String(jpegMode)}`);
    const spec: OutputSpec = {
      size: o.imageSize ?? 112,
      dtype: o.dtype ?? "f32",
      layout: o.layout ?? "nchw",
    };
    const sampler = new ShardedSampler({ ...o, length: ds.length });
    const maskProb = o.maskProb ?? 0.35;
    const rm = o.recordMasks;
    if (rm && !(Number.isInteger(rm.variants) && rm.variants >= 1 && rm.variants <= 255))
      throw new Error(`recordMasks.variants must be an integer in 1..255, got ${rm.variants}`);
    const pool = await DecodePool.start(o.workers ?? 2, {
      type: "init",
      spec,
      decoder: o.decoder ?? "auto",
      jpegMode,
      maskVariants: maskProb > 0 || rm ? (o.maskVariants ?? DEFAULT_MASK_TILES) : 0,
      maskBankSeed: rm ? rm.seed : (o.seed ?? 0),
    });
    return new DataLoader(ds, pool, o, spec, sampler);
  }

  /** Batches of one epoch, from `startStep` (resume), decoded `prefetch` batches ahead. */
  async *epoch(epoch: number, startStep = 0): AsyncGenerator<Batch> {
    const order = [...this.sampler.batches(epoch, startStep)];
    const inflight: Promise<Produced>[] = [];
    let next = 0;
    const launch = (): void => {
      while (inflight.length < this.prefetch && next < order.length) {
        const p = this.produce(epoch, startStep + next, order[next] as Int32Array);
        p.catch(() => undefined); // awaited below; this only silences early rejections
        inflight.push(p);
        next++;
      }
    };
    launch();
    try {
      while (inflight.length) {
        const { batch, sab } = await (inflight.shift() as Promise<Produced>);
        launch(); // refill before handing over: workers keep going while the consumer trains
        if (!this.reuse) this.free.push(sab);
        yield batch;
        // The consumer asked for the next batch: this one's buffer may be reused.
        if (this.reuse) this.free.push(sab);
      }
    } finally {
      // Stopped early: buffers still being written go back once their workers are done.
      for (const p of inflight) p.then(({ sab }) => this.free.push(sab)).catch(() => undefined);
    }
  }

  /** Per-sample augmentation choices, a pure function of the sample's place in the run. */
  private augment(epoch: number, position: number): { flip: boolean; mask: number; variant: number } {
    const rng = new Rng(hash32(this.o.seed ?? 0, epoch, this.sampler.rank, position, 0xa9));
    const flip = rng.chance(this.o.flipProb ?? 0.5);
    const masked = rng.chance(this.o.maskProb ?? 0.35);
    const seed = rng.u32() >>> 1;
    const rm = this.o.recordMasks;
    // With per-record masks the draw picks a variant; its seed depends on the record (maskOf).
    const variant = masked ? (rm ? 1 + (seed % rm.variants) : 1) : 0;
    return { flip, mask: masked ? seed : -1, variant };
  }

  /** The mask seed of `record` for a drawn augmentation (per-record variants when configured). */
  private maskOf(aug: { mask: number; variant: number }, record: number): number {
    const rm = this.o.recordMasks;
    if (!rm || aug.variant === 0) return aug.mask;
    return recordMaskSeed(rm, record, aug.variant);
  }

  /**
   * Decodes the given records as they are, flipped or not, with mask variant `variant` of each
   * (0: none; needs recordMasks otherwise): the fixed images a teacher's stored features are of.
   * No substitutes: `ok[i]` is 0 where record i could not be read, and its row is left as it was.
   */
  async decodeRecords(
    records: Int32Array,
    flip: boolean,
    variant: number,
  ): Promise<{ images: Float32Array | Uint8Array; shape: Batch["shape"]; ok: Uint8Array; errors: string[] }> {
    const rm = this.o.recordMasks;
    if (variant > 0 && (!rm || variant > rm.variants))
      throw new Error(`decodeRecords: mask variant ${variant} needs recordMasks with at least that many`);
    const B = records.length;
    const elems = sampleElements(this.spec);
    const sab = new SharedArrayBuffer(B * elems * (this.spec.dtype === "f32" ? 4 : 1));
    const items: TaskItem[] = [];
    for (let slot = 0; slot < B; slot++) {
      const r = records[slot] as number;
      const mask = variant > 0 ? recordMaskSeed(rm!, r, variant) : -1;
      items.push({ slot, loc: this.dataset.locate(r), flip, mask });
    }
    const per = Math.max(1, Math.ceil(B / (2 * this.pool.size)));
    const chunks: TaskItem[][] = [];
    for (let i = 0; i < B; i += per) chunks.push(items.slice(i, i + per));
    const done = await Promise.all(chunks.map((c) => this.pool.run({ buffer: sab, items: c })));
    const ok = new Uint8Array(B);
    const errors: string[] = [];
    for (const d of done)
      for (const r of d.results) {
        const failure = this.check(r);
        if (failure === null) ok[r.slot] = 1;
        else errors.push(`${this.dataset.describe(records[r.slot] as number)}: ${failure}`);
      }
    const S = this.spec.size;
    const shape: Batch["shape"] = this.spec.layout === "nchw" ? [B, 3, S, S] : [B, S, S, 3];
    const n = B * elems;
    const images = this.spec.dtype === "f32" ? new Float32Array(sab, 0, n) : new Uint8Array(sab, 0, n);
    return { images, shape, ok, errors };
  }

  private substitute(epoch: number, position: number, attempt: number): number {
    const n = this.dataset.length;
    for (let a = attempt; a < attempt + 1000; a++) {
      const j = hash32(this.o.seed ?? 0, epoch, this.sampler.rank, position, a, 0x5b) % n;
      if (!this.bad.has(j)) return j;
    }
    throw new Error(`${this.dataset.source}: found no good sample to stand in for a bad one`);
  }

  private markBad(index: number, reason: string): void {
    if (this.bad.has(index)) return;
    this.bad.add(index);
    this.stats.bad = this.bad.size;
    const where = this.dataset.describe(index);
    this.emit("warning", { index, where, reason, bad: this.bad.size });
    const frac = this.o.maxBadFraction ?? 0.001;
    if (this.bad.size > frac * this.dataset.length)
      throw new Error(
        `${this.dataset.source}: ${this.bad.size} of ${this.dataset.length} samples are bad, more than ` +
          `data.maxBadFraction = ${frac}; last: ${where}: ${reason}`,
      );
  }

  private async produce(epoch: number, step: number, indices: Int32Array): Promise<Produced> {
    const B = indices.length;
    const elems = sampleElements(this.spec);
    const bytesPer = this.spec.dtype === "f32" ? 4 : 1;
    const sab = this.free.pop() ?? new SharedArrayBuffer(B * elems * bytesPer);
    const used = Int32Array.from(indices);
    const labels = new Int32Array(B);
    const masked = new Uint8Array(B);
    const maskVariant = new Uint8Array(B);
    const flipped = new Uint8Array(B);
    const augs: { flip: boolean; mask: number; variant: number }[] = [];
    const attempts = new Int32Array(B);
    let todo: TaskItem[] = [];
    for (let slot = 0; slot < B; slot++) {
      const pos = step * B + slot;
      const aug = this.augment(epoch, pos);
      let idx = used[slot] as number;
      if (this.bad.has(idx))
        idx = this.substitute(epoch, pos, (attempts[slot] = (attempts[slot] as number) + 1));
      used[slot] = idx;
      augs.push(aug);
      masked[slot] = aug.mask >= 0 ? 1 : 0;
      maskVariant[slot] = aug.variant;
      flipped[slot] = aug.flip ? 1 : 0;
      todo.push({ slot, loc: this.dataset.locate(idx), flip: aug.flip, mask: this.maskOf(aug, idx) });
    }
    const per = Math.max(1, Math.ceil(todo.length / (2 * this.pool.size)));
    while (todo.length) {
      const chunks: TaskItem[][] = [];
      for (let i = 0; i < todo.length; i += per) chunks.push(todo.slice(i, i + per));
      const done = await Promise.all(chunks.map((items) => this.pool.run({ buffer: sab, items })));
      const retry: TaskItem[] = [];
      for (const d of done) {
        this.stats.workerBusyMs += d.busyMs;
        for (const r of d.results) {
          const slot = r.slot;
          const failure = this.check(r);
          if (failure === null) {
            labels[slot] = r.label;
            continue;
          }
          this.markBad(used[slot] as number, failure);
          const idx = this.substitute(
            epoch,
            step * B + slot,
            (attempts[slot] = (attempts[slot] as number) + 1),
          );
          used[slot] = idx;
          const prev = todo.find((t) => t.slot === slot) as TaskItem;
          retry.push({ ...prev, loc: this.dataset.locate(idx), mask: this.maskOf(augs[slot]!, idx) });
        }
      }
      todo = retry;
    }
    const n = B * elems;
    let images: Float32Array | Uint8Array =
      this.spec.dtype === "f32" ? new Float32Array(sab, 0, n) : new Uint8Array(sab, 0, n);
    if (!this.reuse) images = images.slice();
    this.stats.batches++;
    this.stats.samples += B;
    const S = this.spec.size;
    const shape: Batch["shape"] = this.spec.layout === "nchw" ? [B, 3, S, S] : [B, S, S, 3];
    return {
      batch: { epoch, step, images, shape, labels, masked, maskVariant, flipped, indices: used },
      sab,
    };
  }

  /** null when the result is usable, else why not. */
  private check(r: ItemResult): string | null {
    if (!r.ok) return r.error ?? "unreadable";
    const c = this.dataset.numClasses;
    if (c !== undefined && (r.label < 0 || r.label >= c)) return `label ${r.label} outside 0..${c - 1}`;
    return null;
  }

  async close(): Promise<void> {
    await this.pool.close();
    this.dataset.close();
  }
}
