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

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The JSON header of an open safetensors file and its length in bytes. */
function readHeader(fd: number, file: string, size: number): { header: Record<string, unknown>; n: number } {
  if (size < 8) throw new Error(`${file}: not a safetensors file (only ${size} bytes)`);
  const n = Number(readExactly(fd, file, 0, 8).readBigUInt64LE());
  if (n > MAX_HEADER || 8 + n > size)
    throw new Error(`${file}: header length ${n} is invalid for a ${size}-byte file`);
  try {
    return { header: JSON.parse(readExactly(fd, file, 8, n).toString("utf8")) as Record<string, unknown>, n };
  } catch (e) {
    throw new Error(`${file}: header is not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

/** A safetensors file's string metadata alone (reads only its header). */
export function readSafetensorsMetadata(file: string): Record<string, string> {
  const fd = fs.openSync(file, "r");
  try {
    const { header } = readHeader(fd, file, fs.fstatSync(fd).size);
    return (header.__metadata__ ?? {}) as Record<string, string>;
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a safetensors file; errors name the file and the tensor. */
export function loadSafetensors(file: string, opts: { verify?: boolean } = {}): SafetensorsFile {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const { header, n } = readHeader(fd, file, size);
    const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
    const base = 8 + n;
    const dataLen = size - base;
    const hash = createHash("sha256");
    const tensors = new Map<string, Tensor>();
    const named = Object.entries(header)
      .filter(([k]) => k !== "__metadata__")
      .map(([k, v]) => [k, v as Entry] as const)
      .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
    let expect = 0;
    try {
      for (const [name, e] of named) {
        const dtype = FROM_ST.get(e.dtype);
        if (dtype === undefined)
          throw new Error(`${file}: tensor '${name}' has unsupported dtype ${e.dtype}`);
        const [b, end] = e.data_offsets;
        const numel = e.shape.reduce((a, x) => a * x, 1);
        if (b !== expect || end < b || end > dataLen || end - b !== numel * ELEMENT_SIZE[dtype]) {
          throw new Error(`${file}: tensor '${name}' has invalid data_offsets [${b}, ${end}]`);
        }
        expect = end;
        const bytes = readExactly(fd, file, base + b, end - b);
        hash.update(bytes);
        tensors.set(name, new Tensor(native.fromBuffer(bytes, dtypeCode(dtype), e.shape)));
      }
      if (expect !== dataLen) throw new Error(`${file}: ${dataLen - expect} bytes after the last tensor`);
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
