// `mfr data info`: what a dataset holds and which samples are broken, found by reading every
// sample once (sequentially): record structure, IRHeader, label, image signature and size, and
// optionally a full decode.
import sharp from "sharp";
import type { Dataset } from "./dataset.ts";
import { FileCache, readSample } from "./dataset.ts";
import { ImageDecoder } from "./decode.ts";
import { SHARP_INPUT, checkImagePixels, sniffImage } from "./image-size.ts";
import { openDataset } from "./open.ts";

export interface CorruptSample {
  /** Record key for .rec datasets, sample index otherwise. */
  id: number;
  where: string;
  reason: string;
}

export interface DatasetInfo {
  kind: Dataset["kind"];
  source: string;
  records: number;
  identities: number;
  declaredIdentities: number | undefined;
  labels: { min: number; max: number };
  imagesPerIdentity: { min: number; median: number; max: number };
  /** "112x112" -> count. */
  sizes: Record<string, number>;
  /** "jpeg" / "png" / "other" -> count. */
  formats: Record<string, number>;
  corrupt: CorruptSample[];
}

export interface InspectOptions {
  /** Also decode every image (slow: ~60 us per 112x112 JPEG). */
  decode?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export async function inspectDataset(source: string | Dataset, o: InspectOptions = {}): Promise<DatasetInfo> {
  const ds = typeof source === "string" ? openDataset(source) : source;
  const files = new FileCache();
  const decoders = o.decode ? new Map<number, ImageDecoder>() : undefined;
  const counts = new Map<number, number>();
  const sizes: Record<string, number> = {};
  const formats: Record<string, number> = {};
  const corrupt: CorruptSample[] = [];
  let min = Infinity;
  let max = -Infinity;
  try {
    for (let i = 0; i < ds.length; i++) {
      const loc = ds.locate(i);
      const id = loc.kind === "rec" ? loc.key : i;
      const bad = (reason: string): void => void corrupt.push({ id, where: ds.describe(i), reason });
      let sample;
      try {
        sample = readSample(loc, files);
      } catch (e) {
        bad((e as Error).message);
        continue;
      }
      const c = ds.numClasses;
      if (c !== undefined && sample.label >= c) {
        bad(`label ${sample.label} outside 0..${c - 1}`);
        continue;
      }
      const sniff = sniffImage(sample.bytes);
      if ("error" in sniff) {
        bad(sniff.error);
        continue;
      }
      if (decoders) {
        try {
          await decodeAnySize(decoders, sample.bytes);
        } catch (e) {
          bad(`cannot decode: ${(e as Error).message}`);
          continue;
        }
      }
      formats[sniff.format] = (formats[sniff.format] ?? 0) + 1;
      const key = `${sniff.width}x${sniff.height}`;
      sizes[key] = (sizes[key] ?? 0) + 1;
      counts.set(sample.label, (counts.get(sample.label) ?? 0) + 1);
      if (sample.label < min) min = sample.label;
      if (sample.label > max) max = sample.label;
      if (o.onProgress && (i % 1000 === 999 || i === ds.length - 1)) o.onProgress(i + 1, ds.length);
    }
  } finally {
    files.close();
    if (typeof source === "string") ds.close();
  }
  const per = [...counts.values()].sort((a, b) => a - b);
  const median = per.length
    ? per.length % 2
      ? per[per.length >> 1]!
      : (per[per.length / 2 - 1]! + per[per.length / 2]!) / 2
    : 0;
  return {
    kind: ds.kind,
    source: ds.source,
    records: ds.length,
    identities: counts.size,
    declaredIdentities: ds.numClasses,
    labels: { min: per.length ? min : 0, max: per.length ? max : -1 },
    imagesPerIdentity: { min: per[0] ?? 0, median, max: per.at(-1) ?? 0 },
    sizes,
    formats,
    corrupt,
  };
}

/** Full decode at the image's own size, one decoder per size met. */
async function decodeAnySize(decoders: Map<number, ImageDecoder>, bytes: Buffer): Promise<void> {
  const s = sniffImage(bytes);
  if ("error" in s) throw new Error(s.error);
  // Before the decoder's buffer is sized from the header's claim.
  checkImagePixels(s.width, s.height);
  if (s.width !== s.height) {
    await sharp(bytes, SHARP_INPUT).raw().toBuffer();
    return;
  }
  let d = decoders.get(s.width);
  if (!d) decoders.set(s.width, (d = new ImageDecoder(s.width)));
  const r = d.decode(bytes);
  if (r instanceof Promise) await r;
}
