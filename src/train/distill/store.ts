// A teacher-feature store (distill.mode "features", docs/distillation.md): the teacher's
// L2-normalised embedding of every record, as fp16, for each image variant a run can draw:
//
//   STORE/manifest.json            format, the dataset's identity, the teacher, the augmentation
//                                  the rows are of, and each part's record range and sha256
//   STORE/part-<r>-of-<W>.f16      rank r's records [start, start + count), record-major: each
//                                  record's rows are (flip 0..F-1) × (mask variant 0..K), D values
//
// Variant 0 is the unmasked image; variant k ≥ 1 wears the record's k-th fixed mask (the loader's
// recordMasks), so a masked sample's stored feature is of exactly the image the student sees.
// Parts are appended a chunk of whole records at a time, so an interrupted write resumes from its
// file's length. Rows are read with positioned reads through the page cache (Node has no mmap):
// one read per sample, D × 2 bytes.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Dataset, JpegMode, RecordMasks } from "../../data/index.ts";
import { sha256File } from "../../torch/index.ts";

export const FEATURE_STORE_FORMAT = "mfr-teacher-features/1";
export const STORE_MANIFEST = "manifest.json";

/** The images a store's rows are of; a run's augmentation must be covered by it. */
export interface StoreAugment {
  imageSize: number;
  jpegMode: JpegMode;
  /** Mask tiles per kind in the mask bank (the loader's maskVariants). */
  maskTiles: number;
  /** null: unmasked rows only. */
  recordMasks: RecordMasks | null;
  /** Whether flipped rows are stored (F = 2) or not (F = 1). */
  flips: boolean;
}

export interface StorePart {
  file: string;
  start: number;
  count: number;
  sha256: string;
}

export interface StoreManifest {
  format: string;
  dataset: { source: string; kind: string; length: number; identity: string };
  teacher: { source: string; sha256: string; embeddingSize: number };
  augment: StoreAugment;
  dtype: "f16";
  parts: StorePart[];
}

/** Rows per record: (flips) × (unmasked + mask variants). */
export function rowsPerRecord(a: StoreAugment): number {
  return (a.flips ? 2 : 1) * (1 + (a.recordMasks?.variants ?? 0));
}

/** The row within a record of (flip, mask variant). */
export function rowInRecord(a: StoreAugment, flip: boolean, variant: number): number {
  return (flip ? 1 : 0) * (1 + (a.recordMasks?.variants ?? 0)) + variant;
}

/**
 * sha256 over what defines a dataset's samples in order, without reading the images: a .rec's
 * index (each record's key and offset); an image's path relative to the dataset, its label and
 * its size in bytes.
 */
export function datasetIdentity(ds: Dataset): string {
  const h = createHash("sha256");
  h.update(`${ds.kind} ${ds.length}\n`);
  const root = path.resolve(ds.source);
  let chunk = "";
  for (let i = 0; i < ds.length; i++) {
    const loc = ds.locate(i);
    chunk +=
      loc.kind === "rec"
        ? `${loc.key} ${loc.offset}\n`
        : `${path.relative(root, loc.file)} ${loc.label} ${fs.statSync(loc.file).size}\n`;
    if (chunk.length > 1 << 16) {
      h.update(chunk);
      chunk = "";
    }
  }
  h.update(chunk);
  return h.digest("hex");
}

export function partFile(rank: number, worldSize: number): string {
  return `part-${rank}-of-${worldSize}.f16`;
}

/** What a run expects of a store; each mismatch is an error naming the store and the field. */
export interface StoreExpectation {
  datasetIdentity: string;
  datasetSource: string;
  teacherSha256: string;
  teacherSource: string;
  imageSize: number;
  jpegMode: JpegMode;
  maskTiles: number;
  /** The run draws masks (maskProb > 0) and flips (flipProb > 0). */
  needsMasks: boolean;
  needsFlips: boolean;
}

/** Reads a finished store's rows. */
export class FeatureStore {
  readonly rowBytes: number;
  readonly rows: number;
  private readonly fds: { fd: number; part: StorePart }[];

  private constructor(
    readonly dir: string,
    readonly manifest: StoreManifest,
  ) {
    this.rowBytes = manifest.teacher.embeddingSize * 2;
    this.rows = rowsPerRecord(manifest.augment);
    this.fds = manifest.parts.map((part) => ({ fd: fs.openSync(path.join(dir, part.file), "r"), part }));
  }

  get embeddingSize(): number {
    return this.manifest.teacher.embeddingSize;
  }

  /** Opens a store, checking it against what the run needs and its parts against the manifest. */
  static open(dir: string, expect: StoreExpectation): FeatureStore {
    const file = path.join(dir, STORE_MANIFEST);
    if (!fs.existsSync(file))
      throw new Error(`${file}: no such file (an unfinished store, or not a feature store)`);
    let m: StoreManifest;
    try {
      m = JSON.parse(fs.readFileSync(file, "utf8")) as StoreManifest;
    } catch (e) {
      throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    const bad = (field: string, have: unknown, want: unknown, why: string): never => {
      throw new Error(
        `${file}: ${field} is ${JSON.stringify(have)}, the run needs ${JSON.stringify(want)} (${why})`,
      );
    };
    if (m.format !== FEATURE_STORE_FORMAT) bad("format", m.format, FEATURE_STORE_FORMAT, "not a store");
    if (m.dataset.identity !== expect.datasetIdentity)
      bad(
        "dataset.identity",
        m.dataset.identity,
        expect.datasetIdentity,
        `written for ${m.dataset.source}, not ${expect.datasetSource}`,
      );
    if (m.teacher.sha256 !== expect.teacherSha256)
      bad(
        "teacher.sha256",
        m.teacher.sha256,
        expect.teacherSha256,
        `written by ${m.teacher.source}, not distill.teacher ${expect.teacherSource}`,
      );
    const a = m.augment;
    if (a.imageSize !== expect.imageSize)
      bad("augment.imageSize", a.imageSize, expect.imageSize, "data.imageSize");
    if (a.jpegMode !== expect.jpegMode) bad("augment.jpegMode", a.jpegMode, expect.jpegMode, "data.jpegMode");
    if (expect.needsMasks && a.recordMasks === null)
      bad("augment.recordMasks", null, "mask variants", "data.maskProb > 0 but the store has no masked rows");
    if (expect.needsMasks && a.maskTiles !== expect.maskTiles)
      bad("augment.maskTiles", a.maskTiles, expect.maskTiles, "the mask bank");
    if (expect.needsFlips && !a.flips)
      bad("augment.flips", false, true, "data.flipProb > 0 but the store has no flipped rows");
    const recordBytes = m.teacher.embeddingSize * 2 * rowsPerRecord(a);
    let covered = 0;
    for (const p of [...m.parts].sort((x, y) => x.start - y.start)) {
      if (p.start !== covered)
        bad("parts", `a part starting at ${p.start}`, `one at ${covered}`, "records missing");
      const f = path.join(dir, p.file);
      const size = fs.existsSync(f) ? fs.statSync(f).size : -1;
      if (size !== p.count * recordBytes)
        throw new Error(
          `${f}: ${size < 0 ? "missing" : `${size} bytes`}, the manifest says ${p.count * recordBytes}`,
        );
      if (sha256File(f) !== p.sha256)
        throw new Error(`${f}: sha256 differs from ${file}'s; the part is damaged`);
      covered += p.count;
    }
    if (covered !== m.dataset.length) bad("parts", covered, m.dataset.length, "records covered");
    return new FeatureStore(dir, m);
  }

  /** Rows [B, D] (fp16 bits) of `records`, each with its flip and mask variant. */
  read(records: Int32Array, flipped: Uint8Array, variants: Uint8Array): Uint16Array {
    const a = this.manifest.augment;
    const K = a.recordMasks?.variants ?? 0;
    const out = new Uint16Array(records.length * this.embeddingSize);
    const view = Buffer.from(out.buffer);
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as number;
      const flip = flipped[i] === 1;
      const v = variants[i] as number;
      if ((flip && !a.flips) || v > K)
        throw new Error(`${this.dir}: holds no row for record ${r} with flip ${flip}, mask variant ${v}`);
      const { fd, part } = this.fds.find((f) => r >= f.part.start && r < f.part.start + f.part.count)!;
      const pos = ((r - part.start) * this.rows + rowInRecord(a, flip, v)) * this.rowBytes;
      const got = fs.readSync(fd, view, i * this.rowBytes, this.rowBytes, pos);
      if (got !== this.rowBytes) throw new Error(`${path.join(this.dir, part.file)}: short read at ${pos}`);
    }
    return out;
  }

  close(): void {
    for (const { fd } of this.fds) fs.closeSync(fd);
  }
}
