// The safetensors format (Hugging Face): u64 little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the raw little-endian data. No npm package
// reads and writes it from tensors of our own, so this small implementation follows the spec.
// A file on its own carries an "mfr.sha256" metadata entry over the data section, checked on
// load; a file whose checksum a manifest records (checkpoints) carries none, so each byte has one.
// Tensor bytes stream between files and the tensors' own memory in chunks: no JS copy, and no
// limit from Node's 2 GiB reads and writes.
import fs from "node:fs";
import { type Hash, createHash } from "node:crypto";
import { noGrad } from "../autograd.ts";
import { empty } from "../creation.ts";
import { type DType, ELEMENT_SIZE } from "../dtype.ts";
import { scope } from "../scope.ts";
import { type Tensor } from "../tensor.ts";
import { readExactly, writeAll, writeAtomic } from "./atomic.ts";

const TO_ST: Record<DType, string> = {
  f32: "F32",
  f64: "F64",
  f16: "F16",
  bf16: "BF16",
  i64: "I64",
  i32: "I32",
  i16: "I16",
  i8: "I8",
  u8: "U8",
  bool: "BOOL",
};
const FROM_ST = new Map<string, DType>(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));
const CHECKSUM_KEY = "mfr.sha256";
const MAX_HEADER = 100 * 1024 * 1024;

export type TensorMap = Map<string, Tensor> | Record<string, Tensor>;

function entries(t: TensorMap): [string, Tensor][] {
  return t instanceof Map ? [...t.entries()] : Object.entries(t);
}

/** Writes tensors (and string metadata) to `file` atomically, the data's sha256 in its header. */
export function saveSafetensors(
  file: string,
  tensors: TensorMap,
  metadata: Record<string, string> = {},
): void {
  writeSafetensors(file, tensors, metadata, true);
}

/**
 * Writes tensors as saveSafetensors does but without a checksum inside, and returns the sha256 of
 * the whole file (hashed as it is written), for a manifest that records it.
 */
export function saveSafetensorsHashed(
  file: string,
  tensors: TensorMap,
  metadata: Record<string, string> = {},
): string {
  return writeSafetensors(file, tensors, metadata, false);
}

/** The 8-byte length and the JSON header, padded with spaces so the data starts 8-aligned. */
function headerBytes(header: Record<string, unknown>): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const pad = (8 - ((8 + json.byteLength) % 8)) % 8;
  const out = Buffer.alloc(8 + json.byteLength + pad, 0x20);
  out.writeBigUInt64LE(BigInt(json.byteLength + pad));
  json.copy(out, 8);
  return out;
}

function writeSafetensors(
  file: string,
  tensors: TensorMap,
  metadata: Record<string, string>,
  embedChecksum: boolean,
): string {
  // Larger elements first, then by name, as the reference writer orders them: keeps every
  // tensor's data aligned to its element size.
  const list = entries(tensors).sort(
    ([an, a], [bn, b]) => ELEMENT_SIZE[b.dtype] - ELEMENT_SIZE[a.dtype] || (an < bn ? -1 : an > bn ? 1 : 0),
  );
  const tensorEntries: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of list) {
    if (name === "__metadata__") throw new Error(`${file}: '__metadata__' cannot be a tensor name`);
    const bytes = t.numel * ELEMENT_SIZE[t.dtype];
    tensorEntries[name] = {
      dtype: TO_ST[t.dtype],
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  // The data's checksum goes into the header, which comes first: a placeholder of the same length
  // is written and replaced once the data (hashed on the way) is out.
  const header = (sum?: string) =>
    headerBytes({ __metadata__: { ...metadata, ...(sum ? { [CHECKSUM_KEY]: sum } : {}) }, ...tensorEntries });
  const hash = createHash("sha256");
  writeAtomic(file, (fd) => {
    const first = header(embedChecksum ? "0".repeat(64) : undefined);
    writeAll(fd, first);
    if (!embedChecksum) hash.update(first);
    for (const [, t] of list)
      noGrad(() =>
        scope(() => {
          for (const view of t.detach().to("cpu").contiguous().byteViews()) {
            hash.update(view);
            writeAll(fd, view);
          }
        }),
      );
    if (embedChecksum) {
      const last = header(hash.copy().digest("hex"));
      if (fs.writeSync(fd, last, 0, last.byteLength, 0) !== last.byteLength)
        throw new Error(`${file}: short write of the header`);
    }
  });
  return hash.digest("hex");
}

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** One tensor of a header, checked: a known dtype, a shape, and its byte range in the data. */
interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

interface Header {
  metadata: Record<string, string>;
  /** In data order; together they tile the data section exactly. */
  entries: Entry[];
  /** Bytes before the data section (8 + the JSON's length). */
  base: number;
}

const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/**
 * The header of an open safetensors file, every claim in it checked against the file's size
 * before anything is allocated from it: the file is untrusted, and an entry's shape decides how
 * much memory its tensor takes.
 */
function readHeader(fd: number, file: string, size: number): Header {
  if (size < 8) throw new Error(`${file}: not a safetensors file (only ${size} bytes)`);
  const n = Number(readExactly(fd, file, 0, 8).readBigUInt64LE());
  if (n > MAX_HEADER || 8 + n > size)
    throw new Error(`${file}: header length ${n} is invalid for a ${size}-byte file`);
  let json: unknown;
  try {
    json = JSON.parse(readExactly(fd, file, 8, n).toString("utf8"));
  } catch (e) {
    throw new Error(`${file}: header is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new Error(`${file}: header is ${JSON.stringify(json)}, not a JSON object of tensors`);
  const { __metadata__: meta = {}, ...tensors } = json as Record<string, unknown>;
  if (
    typeof meta !== "object" ||
    meta === null ||
    Array.isArray(meta) ||
    !Object.values(meta).every((v) => typeof v === "string")
  )
    throw new Error(`${file}: header's __metadata__ is not an object of strings`);
  const dataLen = size - 8 - n;
  const entries = Object.entries(tensors)
    .map(([name, e]) => checkEntry(file, name, e, dataLen))
    .sort((a, b) => a.begin - b.begin);
  let expect = 0;
  for (const e of entries) {
    if (e.begin !== expect)
      throw new Error(
        `${file}: tensor '${e.name}' starts at byte ${e.begin} of the data, expected ${expect} ` +
          "(tensors must tile the data section without gaps or overlaps)",
      );
    expect = e.end;
  }
  if (expect !== dataLen) throw new Error(`${file}: ${dataLen - expect} bytes after the last tensor`);
  return { metadata: meta as Record<string, string>, entries, base: 8 + n };
}

function checkEntry(file: string, name: string, raw: unknown, dataLen: number): Entry {
  const what = `${file}: tensor '${name}'`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new Error(`${what} is ${JSON.stringify(raw)}, not {dtype, shape, data_offsets}`);
  const { dtype: st, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  const dtype = typeof st === "string" ? FROM_ST.get(st) : undefined;
  if (dtype === undefined) throw new Error(`${what} has unsupported dtype ${JSON.stringify(st)}`);
  if (!Array.isArray(shape) || !shape.every(isCount))
    throw new Error(`${what} has shape ${JSON.stringify(shape)}, not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount))
    throw new Error(`${what} has data_offsets ${JSON.stringify(offsets)}, not [begin, end] byte offsets`);
  const [begin, end] = offsets as [number, number];
  if (end < begin || end > dataLen)
    throw new Error(`${what} has data_offsets [${begin}, ${end}] outside the ${dataLen}-byte data section`);
  // A product of dimensions past 2^53 is not exact, and no file holds that many bytes anyway.
  const bytes = (shape as number[]).reduce((a, x) => a * x, ELEMENT_SIZE[dtype]);
  if (bytes !== end - begin)
    throw new Error(
      `${what}: shape [${shape.join(", ")}] of ${st} needs ${bytes} bytes, data_offsets [${begin}, ${end}] hold ${end - begin}`,
    );
  return { name, dtype, shape: shape as number[], begin, end };
}

/** A safetensors file's string metadata alone (reads only its header). */
export function readSafetensorsMetadata(file: string): Record<string, string> {
  const fd = fs.openSync(file, "r");
  try {
    return readHeader(fd, file, fs.fstatSync(fd).size).metadata;
  } finally {
    fs.closeSync(fd);
  }
}

export interface LoadOptions {
  /** false: skip the file's own data checksum (default: checked when present). */
  verify?: boolean;
  /**
   * The sha256 of the whole file as recorded elsewhere (`source`, e.g. a manifest), checked in the
   * same pass that reads the tensors; the file's own checksum is then not checked again.
   */
  expect?: { sha256: string; source: string };
}

/** Reads a safetensors file; errors name the file and the tensor. */
export function loadSafetensors(file: string, opts: LoadOptions = {}): SafetensorsFile {
  const fd = fs.openSync(file, "r");
  try {
    const { metadata, entries, base } = readHeader(fd, file, fs.fstatSync(fd).size);
    let fileHash: Hash | undefined;
    if (opts.expect) (fileHash = createHash("sha256")).update(readExactly(fd, file, 0, base));
    const own = metadata[CHECKSUM_KEY];
    const dataHash =
      !opts.expect && own !== undefined && opts.verify !== false ? createHash("sha256") : undefined;
    const tensors = new Map<string, Tensor>();
    try {
      for (const e of entries) {
        const t = empty(e.shape, { dtype: e.dtype });
        tensors.set(e.name, t);
        let pos = base + e.begin;
        for (const view of t.byteViews()) {
          readInto(fd, file, view, pos);
          pos += view.byteLength;
          fileHash?.update(view);
          dataHash?.update(view);
        }
      }
      if (opts.expect && fileHash!.digest("hex") !== opts.expect.sha256)
        throw new Error(
          `${file}: checksum mismatch with ${opts.expect.source} (the file is corrupt or was edited)`,
        );
      if (dataHash && dataHash.digest("hex") !== own)
        throw new Error(`${file}: checksum mismatch (the file is corrupt)`);
    } catch (err) {
      for (const t of tensors.values()) t.dispose();
      throw err;
    }
    return { tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

/** Fills `view` from the file at `position` (the header has checked that the range exists). */
function readInto(fd: number, file: string, view: Uint8Array, position: number): void {
  for (let got = 0; got < view.byteLength;) {
    const n = fs.readSync(fd, view, got, view.byteLength - got, position + got);
    if (n === 0) throw new Error(`${file}: truncated (the file ended at byte ${position + got})`);
    got += n;
  }
}
