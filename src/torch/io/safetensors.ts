// The safetensors format (Hugging Face): u64 little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the raw little-endian data. No npm package
// reads and writes it from tensors of our own, so this small implementation follows the spec.
// mfr adds an "mfr.sha256" metadata entry over the data section and checks it on load.
import fs from "node:fs";
import { createHash } from "node:crypto";
import { type DType, ELEMENT_SIZE, dtypeCode } from "../dtype.ts";
import { native } from "../native.ts";
import { Tensor } from "../tensor.ts";
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

/** Writes tensors (and string metadata) to `file` atomically. */
export function saveSafetensors(
  file: string,
  tensors: TensorMap,
  metadata: Record<string, string> = {},
): void {
  // Larger elements first, then by name, as the reference writer orders them: keeps every
  // tensor's data aligned to its element size.
  const list = entries(tensors).sort(
    ([an, a], [bn, b]) => ELEMENT_SIZE[b.dtype] - ELEMENT_SIZE[a.dtype] || (an < bn ? -1 : an > bn ? 1 : 0),
  );
  const datas: Uint8Array[] = [];
  const hash = createHash("sha256");
  const header: Record<string, unknown> = {};
  let offset = 0;
  const tensorEntries: Record<string, unknown> = {};
  for (const [name, t] of list) {
    if (name === "__metadata__") throw new Error(`${file}: '__metadata__' cannot be a tensor name`);
    const bytes = new Uint8Array(t.bytes());
    datas.push(bytes);
    hash.update(bytes);
    tensorEntries[name] = {
      dtype: TO_ST[t.dtype],
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes.byteLength],
    };
    offset += bytes.byteLength;
  }
  header.__metadata__ = { ...metadata, [CHECKSUM_KEY]: hash.digest("hex") };
  Object.assign(header, tensorEntries);
  let json = Buffer.from(JSON.stringify(header), "utf8");
  const pad = (8 - ((8 + json.byteLength) % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.byteLength));
  writeAtomic(file, (fd) => {
    writeAll(fd, len);
    writeAll(fd, json);
    for (const d of datas) writeAll(fd, d);
  });
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

/** Reads a safetensors file; errors name the file and the tensor. */
export function loadSafetensors(file: string, opts: { verify?: boolean } = {}): SafetensorsFile {
  const fd = fs.openSync(file, "r");
  try {
    const { metadata, entries, base } = readHeader(fd, file, fs.fstatSync(fd).size);
    const hash = createHash("sha256");
    const tensors = new Map<string, Tensor>();
    try {
      for (const e of entries) {
        const bytes = readExactly(fd, file, base + e.begin, e.end - e.begin);
        hash.update(bytes);
        tensors.set(e.name, new Tensor(native.fromBuffer(bytes, dtypeCode(e.dtype), e.shape)));
      }
      const want = metadata[CHECKSUM_KEY];
      if (want !== undefined && opts.verify !== false && hash.digest("hex") !== want) {
        throw new Error(`${file}: checksum mismatch (the file is corrupt)`);
      }
    } catch (err) {
      for (const t of tensors.values()) t.dispose();
      throw err;
    }
    return { tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}
