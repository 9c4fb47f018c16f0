// MXNet RecordIO (dmlc-core recordio + mxnet.recordio's IRHeader and .idx), byte compatible with
// mxnet.recordio.MXIndexedRecordIO so that InsightFace's train.rec/train.idx files are read and
// written as they are.
//
// A record on disk: uint32 magic 0xced7230a, uint32 lrec = cflag << 29 | length, then the payload
// padded with zeros to a multiple of 4. dmlc's writer splits a payload wherever the magic number
// occurs at a 4-aligned offset (cflag 1 = first part, 2 = middle, 3 = last; the magic itself is
// dropped and re-inserted by the reader), so a reader never mistakes payload bytes for a header.
// The .idx is text: one "key\tbyte offset\n" line per record, in write order.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { RecordIndex, RecordIndexBuilder } from "./record-index.ts";

export { RecordIndex };

export const RECORDIO_MAGIC = 0xced7230a;
/** dmlc-core refuses parts of 2^29 bytes or more (29 bits of length). */
const MAX_PART = (1 << 29) - 1;

/** An error about a file (and possibly one record in it); the message names both. */
export class RecordIOError extends Error {
  constructor(
    readonly file: string,
    readonly detail: string,
    readonly key?: number,
  ) {
    super(`${file}${key === undefined ? "" : ` record ${key}`}: ${detail}`);
    this.name = "RecordIOError";
  }
}

/** Why no record starts at `pos`: at byte 0 the file is not RecordIO at all. */
function badMagic(magic: number, pos: number): string {
  const found = `bad magic 0x${magic.toString(16).padStart(8, "0")} at byte ${pos} (expected 0xced7230a)`;
  return pos === 0 ? `not a RecordIO file: ${found}` : `${found}: no record starts there`;
}

/** mxnet.recordio.IRHeader: flag (number of float labels when > 0), label, id, id2. */
export interface IRHeader {
  flag: number;
  /** A single label when flag is 0, else `flag` float32 labels. */
  label: number | Float32Array;
  id: number;
  id2: number;
}

export const IRHEADER_SIZE = 24; // struct 'IfQQ'

/** mxnet.recordio.pack: header (+ float32 label array when the label is an array) + payload. */
export function packIR(header: Omit<IRHeader, "flag">, payload: Uint8Array): Buffer {
  const labels = typeof header.label === "number" ? null : header.label;
  const extra = labels ? labels.length * 4 : 0;
  const out = Buffer.allocUnsafe(IRHEADER_SIZE + extra + payload.length);
  out.writeUInt32LE(labels ? labels.length : 0, 0);
  out.writeFloatLE(labels ? 0 : (header.label as number), 4);
  out.writeBigUInt64LE(BigInt(header.id), 8);
  out.writeBigUInt64LE(BigInt(header.id2), 16);
  if (labels) for (let i = 0; i < labels.length; i++) out.writeFloatLE(labels[i] as number, 24 + 4 * i);
  out.set(payload, IRHEADER_SIZE + extra);
  return out;
}

/** mxnet.recordio.unpack. Throws a plain Error; callers add the file and key. */
export function unpackIR(rec: Buffer): { header: IRHeader; payload: Buffer } {
  if (rec.length < IRHEADER_SIZE)
    throw new Error(`record of ${rec.length} bytes is shorter than an IRHeader`);
  const flag = rec.readUInt32LE(0);
  const extra = flag * 4;
  if (rec.length < IRHEADER_SIZE + extra)
    throw new Error(`IRHeader flag ${flag} announces ${flag} labels but the record has ${rec.length} bytes`);
  let label: number | Float32Array = rec.readFloatLE(4);
  if (flag > 0) {
    label = new Float32Array(flag);
    for (let i = 0; i < flag; i++) label[i] = rec.readFloatLE(IRHEADER_SIZE + 4 * i);
  }
  const header = {
    flag,
    label,
    // uint64 as two halves: exact up to 2^53, and no BigInt per record in the hot path.
    id: rec.readUInt32LE(8) + rec.readUInt32LE(12) * 4294967296,
    id2: rec.readUInt32LE(16) + rec.readUInt32LE(20) * 4294967296,
  };
  return { header, payload: rec.subarray(IRHEADER_SIZE + extra) };
}

/** The first label of a header (InsightFace convention for image records). */
export function firstLabel(h: IRHeader): number {
  return typeof h.label === "number" ? h.label : (h.label[0] ?? NaN);
}

/**
 * Reads the record starting at `offset` of an open file. Returns the payload (parts joined) and
 * the offset just past it. Throws a plain Error describing what is wrong.
 */
export function readRecordAt(fd: number, offset: number, fileSize: number): Buffer {
  // Fast path: one read covers header and payload of a typical (single-part, < 16 KB) record.
  const want = Math.min(FIRST_READ, fileSize - offset);
  if (want >= 8) {
    const buf = Buffer.allocUnsafe(want);
    const got = readSync(fd, buf, 0, want, offset);
    const lrec = buf.readUInt32LE(4);
    const len = lrec & MAX_PART;
    if (buf.readUInt32LE(0) === RECORDIO_MAGIC && lrec >>> 29 === 0 && 8 + len <= got)
      return buf.subarray(8, 8 + len);
  }
  return readRecordParts(fd, offset, fileSize);
}

const FIRST_READ = 16384;

/** The general path: part by part, with an error for each way a record can be broken. */
function readRecordParts(fd: number, offset: number, fileSize: number): Buffer {
  const head = Buffer.allocUnsafe(8);
  const parts: Buffer[] = [];
  let pos = offset;
  for (;;) {
    if (pos + 8 > fileSize) throw new Error(`record header at byte ${pos} runs past the end of the file`);
    readSync(fd, head, 0, 8, pos);
    const magic = head.readUInt32LE(0);
    if (magic !== RECORDIO_MAGIC) throw new Error(badMagic(magic, pos));
    const lrec = head.readUInt32LE(4);
    const cflag = lrec >>> 29;
    const len = lrec & MAX_PART;
    if (pos + 8 + len > fileSize)
      throw new Error(
        `payload of ${len} bytes at byte ${pos + 8} runs past the end of the file (${fileSize})`,
      );
    if (parts.length === 0 && (cflag === 2 || cflag === 3))
      throw new Error(`record at byte ${pos} starts with a continuation part (cflag ${cflag})`);
    const buf = Buffer.allocUnsafe(len);
    if (len > 0) readSync(fd, buf, 0, len, pos + 8);
    parts.push(buf);
    pos += 8 + ((len + 3) & ~3);
    if (cflag === 0 || cflag === 3) break;
    parts.push(MAGIC_BYTES);
  }
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

const MAGIC_BYTES = Buffer.from([0x0a, 0x23, 0xd7, 0xce]);

/** Encodes one record exactly as dmlc::RecordIOWriter::WriteRecord does. */
export function encodeRecord(payload: Uint8Array): Buffer[] {
  if (payload.length > MAX_PART)
    throw new Error(`record of ${payload.length} bytes exceeds RecordIO's 2^29 limit`);
  const out: Buffer[] = [];
  const src = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  const header = (cflag: number, len: number): Buffer => {
    const h = Buffer.allocUnsafe(8);
    h.writeUInt32LE(RECORDIO_MAGIC, 0);
    h.writeUInt32LE(((cflag << 29) | len) >>> 0, 4);
    return h;
  };
  let dptr = 0;
  const lowerAlign = src.length & ~3;
  for (let i = 0; i < lowerAlign; i += 4) {
    if (src.readUInt32LE(i) === RECORDIO_MAGIC) {
      out.push(header(dptr === 0 ? 1 : 2, i - dptr), src.subarray(dptr, i));
      dptr = i + 4;
    }
  }
  out.push(header(dptr !== 0 ? 3 : 0, src.length - dptr), src.subarray(dptr));
  const pad = ((src.length + 3) & ~3) - src.length;
  if (pad) out.push(Buffer.alloc(pad));
  return out;
}

/**
 * Appends records to a .rec and their offsets to a .idx (MXIndexedRecordIO's 'w' mode). Both are
 * written under temporary names and renamed into place by close(), so a crash never leaves a
 * half-written dataset that looks whole.
 */
export class RecordIOWriter {
  private readonly fdRec: number;
  private readonly fdIdx: number;
  private pos = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private idxLines: string[] = [];
  private closed = false;

  constructor(
    readonly recPath: string,
    readonly idxPath: string,
  ) {
    this.fdRec = openSync(recPath + ".tmp", "w");
    this.fdIdx = openSync(idxPath + ".tmp", "w");
  }

  /** Writes one record under `key` (the .idx line is "key\toffset"). */
  write(key: number, record: Uint8Array): void {
    if (this.closed) throw new Error(`${this.recPath}: write after close`);
    this.idxLines.push(`${key}\t${this.pos}\n`);
    for (const b of encodeRecord(record)) {
      this.pending.push(b);
      this.pendingBytes += b.length;
      this.pos += b.length;
    }
    if (this.pendingBytes > 1 << 22) this.flush();
  }

  private flush(): void {
    if (this.pending.length) writeSync(this.fdRec, Buffer.concat(this.pending));
    if (this.idxLines.length) writeSync(this.fdIdx, this.idxLines.join(""));
    this.pending = [];
    this.pendingBytes = 0;
    this.idxLines = [];
  }

  /**
   * Overwrites bytes of an already written record (same length, e.g. record 0 whose counts are
   * known only at the end). `pos` is a byte offset in the .rec.
   */
  overwrite(pos: number, data: Uint8Array): void {
    this.flush();
    writeSync(this.fdRec, data, 0, data.length, pos);
  }

  /** Flushes, fsyncs and renames both files into place. */
  close(): void {
    if (this.closed) return;
    this.flush();
    fsyncSync(this.fdRec);
    fsyncSync(this.fdIdx);
    closeSync(this.fdRec);
    closeSync(this.fdIdx);
    renameSync(this.recPath + ".tmp", this.recPath);
    renameSync(this.idxPath + ".tmp", this.idxPath);
    this.closed = true;
  }

  /** Gives up: closes and removes both temporary files (a failed pack leaves nothing behind). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of [this.fdRec, this.fdIdx]) closeSync(fd);
    for (const p of [this.recPath, this.idxPath]) rmSync(p + ".tmp", { force: true });
  }
}

/**
 * Parses a .idx, with errors naming the file and line (a missing last newline means truncation).
 * Works on bytes in chunks: WebFace's .idx files (~1 GB of text) exceed V8's longest string.
 */
export function readIndex(idxPath: string): RecordIndex {
  const fd = openSync(idxPath, "r");
  // Lines are >= 12 bytes past the first few hundred (key, tab, 8+ digit offset, newline).
  const index = new RecordIndexBuilder(Math.ceil(fstatSync(fd).size / 12) + 1024);
  let buf = Buffer.allocUnsafe(1 << 24);
  let have = 0; // bytes of an unfinished line kept at the start of buf
  let line = 1;
  try {
    for (let pos = 0; ;) {
      if (have === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const n = readSync(fd, buf, have, buf.length - have, pos);
      if (n === 0) break;
      pos += n;
      const end = have + n;
      const stop = buf.lastIndexOf(0x0a, end - 1) + 1;
      line = parseLines(buf, stop, index, line, idxPath);
      have = end - stop;
      buf.copy(buf, 0, stop, end);
    }
  } finally {
    closeSync(fd);
  }
  if (have > 0)
    throw new RecordIOError(idxPath, `truncated: line ${line} has no end of line (the file was cut short)`);
  return index.done();
}

const isBlank = (c: number): boolean => c === 0x09 || c === 0x20 || c === 0x0d;

/**
 * Parses the whole lines in buf[0, stop) (stop is just past a newline) into `index`; returns the
 * next line's number. Written as tight digit loops (260 M lines at WebFace260M); a line they do
 * not accept is handed to parseIndexLine for the error's wording.
 */
function parseLines(
  buf: Buffer,
  stop: number,
  index: RecordIndexBuilder,
  line: number,
  file: string,
): number {
  for (let i = 0; i < stop; line++) {
    const start = i;
    let d: number;
    while (isBlank(buf[i] as number)) i++;
    let key = 0;
    const k0 = i;
    while ((d = (buf[i] as number) - 0x30) >= 0 && d <= 9) {
      key = key * 10 + d;
      i++;
    }
    const keyEnd = i;
    while (isBlank(buf[i] as number)) i++;
    let off = 0;
    const o0 = i;
    while ((d = (buf[i] as number) - 0x30) >= 0 && d <= 9) {
      off = off * 10 + d;
      i++;
    }
    const offEnd = i;
    while (isBlank(buf[i] as number)) i++;
    if (keyEnd === k0 || offEnd === o0 || o0 === keyEnd || buf[i] !== 0x0a || off % 4 !== 0) {
      const nl = buf.indexOf(0x0a, start);
      throw new RecordIOError(file, `line ${line} ${lineError(buf, start, nl)}`);
    }
    index.push(key, off);
    i++;
  }
  return line;
}

/** What is wrong with the line "key<TAB>offset" in buf[a, b). */
function lineError(buf: Buffer, a: number, b: number): string {
  let off = 0;
  let field = 0; // 0 before key, 1 key, 2 between, 3 offset, 4 after
  for (let i = a; i < b; i++) {
    const c = buf[i] as number;
    if (c >= 0x30 && c <= 0x39) {
      if (field <= 1) field = 1;
      else if (field <= 3) {
        off = off * 10 + (c - 0x30);
        field = 3;
      } else return 'has more than "key<TAB>offset"';
    } else if (isBlank(c)) {
      if (field === 1) field = 2;
      else if (field === 3) field = 4;
    } else return `has an unexpected byte 0x${c.toString(16)} (not "key<TAB>offset")`;
  }
  if (field < 3) return 'is not "key<TAB>offset"';
  return `: offset ${off} is not 4-aligned, so no record starts there`;
}

/** Builds an index by walking a .rec from the start (for a .rec whose .idx is lost). */
export function scanRecords(recPath: string): RecordIndex {
  const fd = openSync(recPath, "r");
  try {
    const size = fstatSync(fd).size;
    const index = new RecordIndexBuilder(1 << 16);
    let pos = 0;
    const head = Buffer.allocUnsafe(8);
    while (pos < size) {
      index.push(index.length, pos);
      for (;;) {
        if (pos + 8 > size)
          throw new RecordIOError(recPath, `truncated: record header at byte ${pos} is cut short`);
        readSync(fd, head, 0, 8, pos);
        const magic = head.readUInt32LE(0);
        if (magic !== RECORDIO_MAGIC) throw new RecordIOError(recPath, badMagic(magic, pos));
        const lrec = head.readUInt32LE(4);
        pos += 8 + (((lrec & MAX_PART) + 3) & ~3);
        const cflag = lrec >>> 29;
        if (cflag === 0 || cflag === 3) break;
      }
      if (pos > size)
        throw new RecordIOError(recPath, `truncated: the last record runs past the end of the file`);
    }
    return index.done();
  } finally {
    closeSync(fd);
  }
}

/** A record header without the RecordIO magic number (as opposed to one cut short). */
class BadMagicError extends Error {}

/**
 * Random access to an indexed .rec (MXIndexedRecordIO's 'r' mode). Opening checks that the files
 * agree: every offset lies inside the .rec, the last record ends exactly where the .rec ends
 * (a shorter .rec was truncated; a longer one means the .idx was), so a cut-short copy fails at
 * once with a clear error instead of deep into an epoch.
 */
export class RecordIOReader {
  readonly fd: number;
  readonly size: number;
  readonly index: RecordIndex;

  constructor(
    readonly recPath: string,
    idxPath: string | null,
  ) {
    this.index = idxPath ? readIndex(idxPath) : scanRecords(recPath);
    this.fd = openSync(recPath, "r");
    this.size = fstatSync(this.fd).size;
    // The record at the largest offset must end where the .rec ends: every offset lies inside.
    const last = this.index.lastPosition;
    if (last >= 0 && this.index.offsetAt(last) >= this.size) {
      this.close();
      throw new RecordIOError(
        recPath,
        `truncated: record ${this.index.keyAt(last)} is indexed at byte ${this.index.offsetAt(last)} but the file has ${this.size} bytes`,
      );
    }
    this.checkStart();
    if (last >= 0) this.checkEnd(last, idxPath);
    else if (idxPath && this.size > 0) {
      this.close();
      throw new RecordIOError(
        idxPath,
        `lists no records but ${recPath} has ${this.size} bytes (the index is empty or was cut short)`,
      );
    }
  }

  /** First key when the .idx lists keys k0, k0+1, ... in order (positions are then arithmetic). */
  get contiguousFrom(): number | null {
    return this.index.contiguousFrom;
  }

  /** Every .rec starts with a record: random bytes are reported as such, not as a truncation. */
  private checkStart(): void {
    if (this.size === 0) return;
    const head = Buffer.alloc(4);
    readSync(this.fd, head, 0, Math.min(4, this.size), 0);
    const magic = head.readUInt32LE(0);
    if (magic !== RECORDIO_MAGIC) {
      this.close();
      throw new RecordIOError(this.recPath, badMagic(magic, 0));
    }
  }

  private checkEnd(last: number, idxPath: string | null): void {
    const key = this.index.keyAt(last);
    let end: number;
    try {
      end = this.endOf(this.index.offsetAt(last));
    } catch (e) {
      this.close();
      const why = e instanceof BadMagicError ? "" : "truncated: ";
      throw new RecordIOError(this.recPath, `${why}last record: ${(e as Error).message}`, key);
    }
    if (end < this.size && idxPath) {
      this.close();
      throw new RecordIOError(
        idxPath,
        `truncated: it indexes records up to byte ${end} but ${this.recPath} has ${this.size} bytes`,
      );
    }
  }

  /** Offset just past the record at `offset` (walking its parts). */
  private endOf(offset: number): number {
    const head = Buffer.allocUnsafe(8);
    let pos = offset;
    for (;;) {
      if (pos + 8 > this.size)
        throw new Error(`header at byte ${pos} runs past the end (${this.size} bytes)`);
      readSync(this.fd, head, 0, 8, pos);
      const magic = head.readUInt32LE(0);
      if (magic !== RECORDIO_MAGIC) throw new BadMagicError(badMagic(magic, pos));
      const lrec = head.readUInt32LE(4);
      const len = lrec & MAX_PART;
      if (pos + 8 + len > this.size)
        throw new Error(`payload of ${len} bytes at byte ${pos + 8} runs past the end (${this.size} bytes)`);
      pos += 8 + ((len + 3) & ~3);
      if (lrec >>> 29 === 0 || lrec >>> 29 === 3) return pos;
    }
  }

  get length(): number {
    return this.index.length;
  }

  /** Position in the index of `key`, or -1. */
  positionOf(key: number): number {
    return this.index.positionOf(key);
  }

  offsetOf(key: number): number {
    const p = this.positionOf(key);
    if (p < 0) throw new RecordIOError(this.recPath, "no such key in the index", key);
    return this.index.offsetAt(p);
  }

  /** The raw record (IRHeader + payload) under `key`. */
  read(key: number): Buffer {
    const off = this.offsetOf(key);
    try {
      return readRecordAt(this.fd, off, this.size);
    } catch (e) {
      throw new RecordIOError(this.recPath, (e as Error).message, key);
    }
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
