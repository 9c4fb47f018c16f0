// What every dataset (RecordIO, image folder, list file) offers the sampler and the decode
// workers: a length, identities, and for each sample a small serialisable locator that a worker
// thread can read on its own, so the trainer's thread never touches image bytes.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { IRHEADER_SIZE, RECORDIO_MAGIC, firstLabel, readRecordAt, unpackIR } from "./recordio.ts";

export type DatasetKind = "rec" | "folder" | "list";

/** Where one sample's bytes live. Plain data: it is posted to worker threads. */
export type SampleLocator =
  { kind: "rec"; file: string; key: number; offset: number } | { kind: "file"; file: string; label: number };

export interface Dataset {
  readonly kind: DatasetKind;
  /** The path the dataset was opened from. */
  readonly source: string;
  /** Number of image samples. */
  readonly length: number;
  /** Number of identities, when the dataset declares it (folders, record 0, `property`). */
  readonly numClasses: number | undefined;
  /**
   * The metadata numClasses was read from ("…/property", "…/train.rec record 0", a list file),
   * where it is a claim of the file rather than a count of what was found.
   */
  readonly numClassesFrom?: string;
  /** Nominal image size from the `property` file ([height, width]), when there is one. */
  readonly imageSize: [number, number] | undefined;
  locate(i: number): SampleLocator;
  /** The sample's label when it is known without reading the sample. */
  labelOf(i: number): number | undefined;
  /** Names sample `i` for messages: "train.rec record 17" or the image's path. */
  describe(i: number): string;
  close(): void;
}

/** Names a located sample for messages. */
export function describeLocator(loc: SampleLocator): string {
  return loc.kind === "rec" ? `${loc.file} record ${loc.key}` : loc.file;
}

/** Open file descriptors kept per path (one per worker), with their sizes. */
export class FileCache {
  private readonly open = new Map<string, { fd: number; size: number }>();
  /** readSampleReused's buffer: grown to the largest record seen, never shrunk. */
  private buf = Buffer.allocUnsafe(8192);

  /** A buffer of at least `n` bytes, the same one call after call while it is big enough. */
  scratch(n: number): Buffer {
    if (this.buf.length < n) this.buf = Buffer.allocUnsafe(Math.max(n, 2 * this.buf.length));
    return this.buf;
  }

  get(file: string): { fd: number; size: number } {
    let f = this.open.get(file);
    if (!f) {
      const fd = openSync(file, "r");
      f = { fd, size: fstatSync(fd).size };
      this.open.set(file, f);
    }
    return f;
  }
  close(): void {
    for (const { fd } of this.open.values()) closeSync(fd);
    this.open.clear();
  }
}

export interface RawSample {
  label: number;
  /** Encoded image bytes (JPEG/PNG...). */
  bytes: Buffer;
}

/** Reads a sample's label and encoded bytes. Throws an Error naming what is wrong. */
export function readSample(loc: SampleLocator, files: FileCache): RawSample {
  if (loc.kind === "file") return { label: loc.label, bytes: readFileSync(loc.file) };
  const { fd, size } = files.get(loc.file);
  const { header, payload } = unpackIR(readRecordAt(fd, loc.offset, size));
  const label = firstLabel(header);
  if (!Number.isInteger(label) || label < 0) throw new Error(`label ${label} is not a class index`);
  return { label, bytes: payload };
}

/**
 * readSample for a loop that is done with one image before it reads the next (a decode worker):
 * the bytes returned live in `files`' scratch buffer and are overwritten by the next call. A
 * single-part .rec record, every image record in practice, costs one read() and no allocation
 * (a fresh 16 KB buffer per image, as readSample needs, cost more than the read itself); anything
 * else goes through readSample, which also words the errors.
 */
export function readSampleReused(loc: SampleLocator, files: FileCache): RawSample {
  if (loc.kind !== "rec") return readSample(loc, files);
  const { fd, size } = files.get(loc.file);
  const left = size - loc.offset;
  let buf = files.scratch(0);
  let got = readSync(fd, buf, 0, Math.min(buf.length, left), loc.offset);
  if (got < 8 + IRHEADER_SIZE || buf.readUInt32LE(0) !== RECORDIO_MAGIC) return readSample(loc, files);
  const lrec = buf.readUInt32LE(4);
  const len = lrec & 0x1fffffff;
  if (lrec >>> 29 !== 0 || 8 + len > left) return readSample(loc, files);
  if (8 + len > got) {
    buf = files.scratch(8 + len);
    got = readSync(fd, buf, 0, 8 + len, loc.offset);
    if (got < 8 + len) return readSample(loc, files);
  }
  const flag = buf.readUInt32LE(8);
  const start = 8 + IRHEADER_SIZE + 4 * flag;
  if (len < IRHEADER_SIZE + 4 * flag) return readSample(loc, files);
  // mxnet.recordio.unpack's label: the header's float, or the first of `flag` floats after it.
  const label = buf.readFloatLE(flag > 0 ? 8 + IRHEADER_SIZE : 12);
  if (!Number.isInteger(label) || label < 0) throw new Error(`label ${label} is not a class index`);
  return { label, bytes: buf.subarray(start, 8 + len) };
}

/**
 * Many short strings (42 M image paths for WebFace42M) kept as one UTF-8 buffer plus offsets:
 * an array of JS strings that size would need several GB of heap.
 */
export class StringTable {
  private buf: Buffer = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  private ends: Float64Array = new Float64Array(1024);
  private n = 0;

  get length(): number {
    return this.n;
  }

  push(s: string): void {
    const need = Buffer.byteLength(s);
    if (this.used + need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + need));
      this.buf.copy(bigger, 0, 0, this.used);
      this.buf = bigger;
    }
    this.used += this.buf.write(s, this.used);
    if (this.n === this.ends.length) {
      const e = new Float64Array(this.ends.length * 2);
      e.set(this.ends);
      this.ends = e;
    }
    this.ends[this.n++] = this.used;
  }

  get(i: number): string {
    if (i < 0 || i >= this.n) throw new RangeError(`StringTable index ${i} out of range 0..${this.n - 1}`);
    const start = i === 0 ? 0 : (this.ends[i - 1] as number);
    return this.buf.toString("utf8", start, this.ends[i] as number);
  }
}
