// InsightFace's RecordIO dataset layout (MS1M, Glint360K, WebFace packs):
//   train.rec / train.idx  records written by MXIndexedRecordIO
//   record 0               IRHeader with flag 2 and label [A, B]: image records are keys 1..A-1,
//                          identity records are keys A..B-1, identity c's record holding the
//                          [start, end) image-key range of its images in its label
//   image records          IRHeader(flag 0, label = identity, id = key, id2 = 0) + JPEG bytes
//   property               "identities,height,width"
// Packs without record 0's header (newer InsightFace tools) have image records from key 0.
import {
  closeSync,
  existsSync,
  mkdirSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import path from "node:path";

import type { Dataset, SampleLocator } from "./dataset.ts";
import { RecordIOError, RecordIOReader, RecordIOWriter, packIR, unpackIR } from "./recordio.ts";

export interface RecProperty {
  identities: number;
  height: number;
  width: number;
}

export function readProperty(file: string): RecProperty {
  const text = readFileSync(file, "utf8").trim();
  const parts = text.split(",").map((s) => Number(s.trim()));
  if (parts.length < 1 || parts.some((x) => !Number.isInteger(x) || x < 0))
    throw new Error(`${file}: expected "identities,height,width", found ${JSON.stringify(text)}`);
  return { identities: parts[0] as number, height: parts[1] ?? 112, width: parts[2] ?? 112 };
}

/** The .rec, .idx and property paths for a directory holding train.rec or for a .rec path. */
export function recPaths(p: string): { rec: string; idx: string; property: string } {
  const rec = p.endsWith(".rec") ? p : path.join(p, "train.rec");
  return { rec, idx: rec.slice(0, -4) + ".idx", property: path.join(path.dirname(rec), "property") };
}

export class RecDataset implements Dataset {
  readonly kind = "rec" as const;
  readonly reader: RecordIOReader;
  readonly numClasses: number | undefined;
  readonly numClassesFrom: string | undefined;
  readonly imageSize: [number, number] | undefined;
  readonly length: number;
  /** Image i sits at index position `first + i`, or at positions[i] when the keys are scattered. */
  private readonly first: number;
  private readonly positions: Float64Array | undefined;
  /** Record 0's [first identity key, end key), when the pack has that header. */
  readonly header0: [number, number] | undefined;
  private ranges: Float64Array | undefined;

  constructor(readonly source: string) {
    const { rec, idx, property } = recPaths(source);
    this.reader = new RecordIOReader(rec, existsSync(idx) ? idx : null);
    const prop = existsSync(property) ? readProperty(property) : undefined;
    this.imageSize = prop ? [prop.height, prop.width] : undefined;
    const h0 = this.reader.positionOf(0) >= 0 ? unpackIR(this.reader.read(0)).header : undefined;
    if (h0 && h0.flag > 0 && typeof h0.label !== "number") {
      const [a, b] = this.checkHeader0(h0.label);
      this.header0 = [a, b];
      this.length = Math.max(0, a - 1);
      this.first = 1;
      // Keys 0..n in order (every InsightFace pack): positions are the keys, nothing to store.
      if (this.reader.contiguousFrom !== 0 || this.length >= this.reader.length) {
        this.positions = new Float64Array(this.length);
        for (let k = 1; k < a; k++) {
          const p = this.reader.positionOf(k);
          if (p < 0) {
            this.close();
            throw new RecordIOError(rec, `record 0 says images are keys 1..${a - 1} but key ${k} is missing`);
          }
          this.positions[k - 1] = p;
        }
      }
      this.numClasses = b - a;
      this.numClassesFrom = `${rec} record 0`;
    } else {
      this.header0 = undefined;
      this.length = this.reader.length;
      this.first = 0;
      this.numClasses = prop?.identities;
      this.numClassesFrom = prop ? property : undefined;
    }
  }

  private position(i: number): number {
    return this.positions ? (this.positions[i] as number) : this.first + i;
  }

  private keyOf(i: number): number {
    return this.reader.index.keyAt(this.position(i));
  }

  /**
   * Record 0's label [A, B): image keys 1..A-1, identity keys A..B-1. Float32 labels are rounded
   * (exact integers only up to 2^24); what no pack can hold (NaN, A < 1, B < A, more identity
   * records than records) is an error, not an empty dataset.
   */
  private checkHeader0(label: Float32Array): [number, number] {
    const a = Math.round(label[0] ?? NaN);
    const b = Math.round(label[1] ?? a);
    const n = this.reader.length;
    if (!(a >= 1 && b >= a && a - 1 <= n && b - a <= n)) {
      this.close();
      throw new RecordIOError(
        this.reader.recPath,
        `header label [${Array.from(label.subarray(0, 2)).join(", ")}] is not an ` +
          `[image end, identity end) key range of this ${n}-record file`,
        0,
      );
    }
    return [a, b];
  }

  locate(i: number): SampleLocator {
    const p = this.position(i);
    return {
      kind: "rec",
      file: this.reader.recPath,
      key: this.reader.index.keyAt(p),
      offset: this.reader.index.offsetAt(p),
    };
  }

  describe(i: number): string {
    return `${this.reader.recPath} record ${this.keyOf(i)}`;
  }

  /** Labels are known without reading images only through record 0's identity records. */
  labelOf(i: number): number | undefined {
    const r = this.identityRanges();
    if (!r) return undefined;
    const key = this.keyOf(i);
    let lo = 0;
    let hi = r.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (key < (r[2 * mid] as number)) hi = mid - 1;
      else if (key >= (r[2 * mid + 1] as number)) lo = mid + 1;
      else return mid;
    }
    return undefined;
  }

  /** [start, end) image keys per identity, read from the identity records (once, lazily). */
  identityRanges(): Float64Array | undefined {
    if (!this.header0) return undefined;
    if (this.ranges) return this.ranges;
    const [a, b] = this.header0;
    const r = new Float64Array(2 * (b - a));
    for (let k = a; k < b; k++) {
      const { header } = unpackIR(this.reader.read(k));
      if (typeof header.label === "number" || header.label.length < 2)
        throw new RecordIOError(this.reader.recPath, "identity record has no [start, end) label", k);
      r[2 * (k - a)] = header.label[0] as number;
      r[2 * (k - a) + 1] = header.label[1] as number;
    }
    return (this.ranges = r);
  }

  close(): void {
    this.reader.close();
  }
}

/** One identity's images, in the order they are to be written. */
export interface IdentityImages {
  images: Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
}

/**
 * Writes an InsightFace-layout pack (record 0 header, image records, identity records, property)
 * into `dir`. Identities are numbered 0.. in the order given.
 */
export async function writeRecDataset(
  dir: string,
  identities: Iterable<IdentityImages> | AsyncIterable<IdentityImages>,
  opts: { imageSize?: [number, number]; onImage?: (n: number) => void } = {},
): Promise<{ images: number; identities: number }> {
  const { rec, idx, property } = recPaths(dir);
  mkdirSync(dir, { recursive: true });
  // Record 0 must come first but holds counts known only at the end: write a same-sized
  // placeholder and overwrite it before the files are renamed into place.
  const w = new RecordIOWriter(rec, idx);
  try {
    return await writeRecords(w, identities, opts, property);
  } catch (e) {
    w.abort();
    throw e;
  }
}

async function writeRecords(
  w: RecordIOWriter,
  identities: Iterable<IdentityImages> | AsyncIterable<IdentityImages>,
  opts: { imageSize?: [number, number]; onImage?: (n: number) => void },
  property: string,
): Promise<{ images: number; identities: number }> {
  const header0Size = packIR({ label: Float32Array.of(0, 0), id: 0, id2: 0 }, new Uint8Array(0)).length;
  w.write(0, Buffer.alloc(header0Size)); // placeholder, replaced below
  const ranges: number[] = [];
  let key = 1;
  let label = 0;
  for await (const id of identities) {
    const start = key;
    for await (const img of id.images) {
      w.write(key, packIR({ label, id: key, id2: 0 }, img));
      key++;
      opts.onImage?.(key - 1);
    }
    ranges.push(start, key);
    label++;
  }
  const firstId = key;
  for (let c = 0; c < label; c++) {
    w.write(
      key,
      packIR(
        { label: Float32Array.of(ranges[2 * c]!, ranges[2 * c + 1]!), id: key, id2: 0 },
        new Uint8Array(0),
      ),
    );
    key++;
  }
  // Record 0 sits at offset 0, its bytes after the 8-byte RecordIO header; same length, and
  // positive float labels never spell the magic number, so its encoding is unchanged.
  w.overwrite(8, packIR({ label: Float32Array.of(firstId, key), id: 0, id2: 0 }, new Uint8Array(0)));
  w.close();
  const [h, wd] = opts.imageSize ?? [112, 112];
  writeFileAtomic(property, `${label},${h},${wd}\n`);
  return { images: firstId - 1, identities: label };
}

/** Temporary name, fsync, rename (src/data stays free of src/torch, which loads libtorch). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
}
