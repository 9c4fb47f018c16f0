// NumPy's .npy format (versions 1.0–3.0): magic, a Python-literal header dict, raw data.
// Written here rather than taken from npm: the packages there read only, or only float arrays.
import fs from "node:fs";
import { type DType, ELEMENT_SIZE, dtypeCode } from "../dtype.ts";
import { native } from "../native.ts";
import { Tensor } from "../tensor.ts";
import { readExactly, writeAll, writeAtomic } from "./atomic.ts";

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** Longest header read (the length is the file's claim); numpy's reader refuses > 10000 by default. */
const MAX_HEADER = 1 << 20;

const DESCR: Partial<Record<DType, string>> = {
  f32: "<f4",
  f64: "<f8",
  f16: "<f2",
  i64: "<i8",
  i32: "<i4",
  i16: "<i2",
  i8: "|i1",
  u8: "|u1",
  bool: "|b1",
};

// numpy type char + size -> our dtype; unsigned types wider than a byte widen to a signed type.
const READ: Record<string, { dtype: DType; widenFrom?: "u2" | "u4" }> = {
  f4: { dtype: "f32" },
  f8: { dtype: "f64" },
  f2: { dtype: "f16" },
  i8: { dtype: "i64" },
  i4: { dtype: "i32" },
  i2: { dtype: "i16" },
  i1: { dtype: "i8" },
  u1: { dtype: "u8" },
  b1: { dtype: "bool" },
  u2: { dtype: "i32", widenFrom: "u2" },
  u4: { dtype: "i64", widenFrom: "u4" },
};

/** Writes a tensor as .npy (bf16 is not a NumPy type: convert to f32 first). */
export function saveNpy(file: string, t: Tensor): void {
  const descr = DESCR[t.dtype];
  if (descr === undefined)
    throw new Error(`${file}: dtype ${t.dtype} has no .npy equivalent; convert it to f32`);
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(", ")})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Version 1.0 while the header fits a u16; the whole preamble is padded to 64 bytes.
  const v1 = dict.length + 1 + 10 <= 65535;
  const pre = v1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - pre - 1, " ") + "\n";
  const head = Buffer.alloc(pre);
  MAGIC.copy(head, 0);
  head[6] = v1 ? 1 : 2;
  head[7] = 0;
  if (v1) head.writeUInt16LE(dict.length, 8);
  else head.writeUInt32LE(dict.length, 8);
  const data = new Uint8Array(t.bytes());
  writeAtomic(file, (fd) => {
    writeAll(fd, head);
    writeAll(fd, Buffer.from(dict, "latin1"));
    writeAll(fd, data);
  });
}

interface Header {
  descr: string;
  fortran: boolean;
  shape: number[];
}

function parseHeader(file: string, text: string): Header {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new Error(`${file}: malformed .npy header ${JSON.stringify(text.trim())}`);
  }
  const shape = shapeText
    .split(",")
    .map((s) => s.trim().replace(/L$/, ""))
    .filter((s) => s.length > 0)
    .map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${file}: bad dimension '${s}' in .npy shape`);
      return n;
    });
  return { descr, fortran: fortran === "True", shape };
}

/** Reads a .npy file into a tensor. */
export function loadNpy(file: string): Tensor {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const pre = readExactly(fd, file, 0, Math.min(size, 12));
    if (size < 10 || !pre.subarray(0, 6).equals(MAGIC))
      throw new Error(`${file}: not a .npy file (bad magic)`);
    const major = pre[6];
    if (major !== 1 && major !== 2 && major !== 3)
      throw new Error(`${file}: unsupported .npy version ${major}`);
    const hlen = major === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
    const start = major === 1 ? 10 : 12;
    if (hlen > MAX_HEADER || start + hlen > size)
      throw new Error(
        `${file}: .npy header length ${hlen} is invalid for a ${size}-byte file (at most ${MAX_HEADER})`,
      );
    const h = parseHeader(file, readExactly(fd, file, start, hlen).toString(major === 3 ? "utf8" : "latin1"));
    const order = h.descr[0];
    const kind = h.descr.slice(1);
    const spec = READ[kind];
    if (spec === undefined || !"<>|=".includes(order ?? "")) {
      throw new Error(`${file}: unsupported .npy dtype '${h.descr}'`);
    }
    const itemSize = Number(kind.slice(1));
    const numel = h.shape.reduce((a, x) => a * x, 1);
    const dataStart = start + hlen;
    if (size - dataStart < numel * itemSize) {
      throw new Error(
        `${file}: truncated (${h.shape.join("x")} ${h.descr} needs ${numel * itemSize} data bytes, file has ${size - dataStart})`,
      );
    }
    let bytes: Uint8Array = readExactly(fd, file, dataStart, numel * itemSize);
    if (order === ">" && itemSize > 1) bytes = swapBytes(bytes, itemSize);
    if (spec.widenFrom === "u2")
      bytes = new Uint8Array(Int32Array.from(new Uint16Array(aligned(bytes))).buffer);
    if (spec.widenFrom === "u4") {
      bytes = new Uint8Array(BigInt64Array.from(new Uint32Array(aligned(bytes)), (v) => BigInt(v)).buffer);
    }
    if (bytes.byteLength !== numel * ELEMENT_SIZE[spec.dtype])
      throw new Error(`${file}: internal size mismatch`);
    const shape = h.fortran ? [...h.shape].reverse() : h.shape;
    const t = new Tensor(native.fromBuffer(bytes, dtypeCode(spec.dtype), shape));
    if (!h.fortran || h.shape.length < 2) return t;
    const order2 = shape.map((_, i) => shape.length - 1 - i);
    const out = t.permute(...order2).contiguous();
    t.dispose();
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

function aligned(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

function swapBytes(b: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(b.byteLength);
  for (let i = 0; i < b.byteLength; i += width)
    for (let j = 0; j < width; j++) out[i + j] = b[i + width - 1 - j]!;
  return out;
}
