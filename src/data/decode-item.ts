// One sample's whole trip into its batch row: read the record, decode, mask, flip, and write in the
// output layout. Decode workers run it for every item; bench/data.bench.ts runs the same function on
// one thread, so the per-core figure it reports is the workers' code and not a copy of it.
import { type FileCache, readSampleReused } from "./dataset.ts";
import { type ImageDecoder, type OutputSpec, flipInPlace, sampleElements, writeSample } from "./decode.ts";
import type { MaskBank } from "./mask/render.ts";
import type { TaskItem } from "./worker-protocol.ts";

export interface ItemContext {
  spec: OutputSpec;
  decoder: ImageDecoder;
  /** null: the loader draws no masks. */
  bank: MaskBank | null;
  /** The worker's open files; also owns the reused read buffer. */
  files: FileCache;
}

/**
 * Fills row `item.slot` of `buffer` (a batch, typed by spec.dtype) and returns the sample's label.
 * Synchronous for JPEGs at the output size (libjpeg-turbo), a promise when sharp is needed; items
 * must be processed one at a time (the record's bytes live in a reused buffer). Throws an Error
 * saying what is wrong with a sample that cannot be used.
 */
export function decodeItem(
  ctx: ItemContext,
  item: Pick<TaskItem, "slot" | "loc" | "flip" | "mask">,
  buffer: ArrayBufferLike,
): number | Promise<number> {
  const { spec, decoder } = ctx;
  const { label, bytes } = readSampleReused(item.loc, ctx.files);
  if (spec.dtype === "u8" && spec.layout === "nhwc") {
    // The row has exactly the decoder's layout: decode, mask and flip in the batch itself.
    const row = sampleElements(spec);
    const target = Buffer.from(buffer, item.slot * row, row);
    const d = decoder.decodeInto(bytes, target);
    if (d instanceof Promise) return d.then(() => finishInPlace(ctx, item, target, label));
    return finishInPlace(ctx, item, target, label);
  }
  const out = spec.dtype === "f32" ? new Float32Array(buffer) : new Uint8Array(buffer);
  const d = decoder.decode(bytes);
  if (d instanceof Promise) return d.then((rgb) => finishCopy(ctx, item, rgb, out, label));
  return finishCopy(ctx, item, d, out, label);
}

function finishInPlace(
  ctx: ItemContext,
  item: Pick<TaskItem, "flip" | "mask">,
  rgb: Buffer,
  label: number,
): number {
  if (item.mask >= 0) maskBank(ctx).apply(rgb, ctx.spec.size, item.mask);
  if (item.flip) flipInPlace(rgb, ctx.spec.size);
  return label;
}

function finishCopy(
  ctx: ItemContext,
  item: Pick<TaskItem, "slot" | "flip" | "mask">,
  rgb: Uint8Array,
  out: Float32Array | Uint8Array,
  label: number,
): number {
  if (item.mask >= 0) maskBank(ctx).apply(rgb, ctx.spec.size, item.mask);
  writeSample(rgb, item.flip, out, item.slot, ctx.spec);
  return label;
}

function maskBank(ctx: ItemContext): MaskBank {
  if (!ctx.bank) throw new Error("mask requested but the worker has no mask bank");
  return ctx.bank;
}
