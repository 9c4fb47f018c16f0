// Turning encoded images into batch rows: decode, optional mask, optional horizontal flip, and the
// layout/dtype change, writing straight into the batch's shared buffer.
//
// JPEGs already at the target size (every image of an InsightFace/WebFace pack) go through
// libjpeg-turbo, synchronously, ~55 us for 112x112: through one kept TurboJPEG decompressor
// (./turbojpeg.ts, with the IDCT and upsampling of `jpegMode`) where that library can be loaded,
// else through @julusian/jpeg-turbo's addon (always the fast IDCT). Everything else (PNG, other
// sizes, CMYK, anything libjpeg-turbo refuses) goes through sharp, whose libvips pipeline costs
// ~1 ms per image whatever its size: measured, the reason for the fast path (bench/data.bench.ts).
import jpegTurbo from "@julusian/jpeg-turbo";
import sharp from "sharp";
import { SHARP_INPUT, checkImageHeader, checkImagePixels } from "./image-size.ts";
import { JPEG_MODES, type JpegMode, TurboJpeg } from "./turbojpeg.ts";

export type { JpegMode } from "./turbojpeg.ts";
export type OutputDType = "f32" | "u8";
export type Layout = "nchw" | "nhwc";
export type DecoderChoice = "auto" | "sharp";

export interface OutputSpec {
  size: number;
  dtype: OutputDType;
  layout: Layout;
}

/** Elements one sample occupies in a batch buffer. */
export const sampleElements = (s: OutputSpec): number => 3 * s.size * s.size;

const isJpeg = (b: Uint8Array): boolean => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** (x - 127.5) / 127.5 for every byte value. */
const NORM = Float32Array.from({ length: 256 }, (_, i) => (i - 127.5) / 127.5);

const RGB_OPTIONS = { format: jpegTurbo.FORMAT_RGB };

export class ImageDecoder {
  /** libjpeg-turbo writes here; big enough for any image that is then resized by sharp. */
  private readonly scratch: Buffer;
  private readonly turbo: TurboJpeg | null;
  /**
   * The JPEG decode actually used on the fast path: the requested mode, or "fast-idct" where only
   * @julusian/jpeg-turbo's addon is available (see ./turbojpeg.ts).
   */
  readonly jpegMode: JpegMode;
  readonly stats = { turbo: 0, sharp: 0 };

  constructor(
    readonly size: number,
    readonly choice: DecoderChoice = "auto",
    jpegMode: JpegMode = "fast-idct",
  ) {
    checkImagePixels(size, size);
    this.scratch = Buffer.alloc(Math.max(size * size * 3, 512 * 512 * 3));
    if (!JPEG_MODES.includes(jpegMode))
      throw new Error(`data.jpegMode must be one of ${JPEG_MODES.join(", ")}, got ${String(jpegMode)}`);
    this.turbo = choice === "auto" ? TurboJpeg.open(jpegMode) : null;
    // sharp (libvips) decodes with libjpeg's defaults, the accurate IDCT
    this.jpegMode = choice === "sharp" ? "accurate" : this.turbo ? jpegMode : "fast-idct";
  }

  /**
   * HWC RGB bytes of size x size. Synchronous on the fast path; a promise when sharp is needed.
   * The returned array may be reused by the next call.
   */
  decode(bytes: Buffer): Uint8Array | Promise<Uint8Array> {
    const S = this.size;
    if (this.choice === "auto" && isJpeg(bytes) && this.fast(bytes, this.scratch))
      return this.scratch.subarray(0, S * S * 3);
    return this.decodeWithSharp(bytes);
  }

  /**
   * Decodes into `target` (size x size x 3 bytes, e.g. a row of a shared batch buffer):
   * libjpeg-turbo writes there directly, so the u8 NHWC path copies no pixels at all.
   */
  decodeInto(bytes: Buffer, target: Buffer): Buffer | Promise<Buffer> {
    if (this.choice === "auto" && isJpeg(bytes) && this.fast(bytes, target)) return target;
    // sharp overwrites whatever a failed attempt left in target
    return this.decodeWithSharp(bytes).then((rgb) => {
      target.set(rgb);
      return target;
    });
  }

  /** libjpeg-turbo into `target` when the JPEG is size x size; false sends it to sharp. */
  private fast(bytes: Buffer, target: Buffer): boolean {
    const S = this.size;
    try {
      if (this.turbo) {
        if (!this.turbo.decodeInto(bytes, target, S)) return false;
      } else {
        const r = jpegTurbo.decompressSync(bytes, target, RGB_OPTIONS);
        if (r.width !== S || r.height !== S) return false;
      }
      this.stats.turbo++;
      return true;
    } catch {
      // Fall through: sharp either manages (e.g. CMYK) or reports the real problem.
      return false;
    }
  }

  private async decodeWithSharp(bytes: Buffer): Promise<Uint8Array> {
    this.stats.sharp++;
    // The same refusal, in the same words, as every other decode (sharp's own is terser).
    checkImageHeader(bytes);
    // A copy: `bytes` may be a reused read buffer (readSampleReused), and sharp reads it later.
    const { data, info } = await sharp(Buffer.from(bytes), SHARP_INPUT)
      .removeAlpha()
      .toColourspace("srgb")
      .resize(this.size, this.size, { fit: "fill" })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return data;
  }
}

/**
 * Writes HWC RGB `rgb` as sample `slot` of a batch buffer, mirrored left-right when `flip`.
 * f32 is normalised to [-1, 1] as (x - 127.5) / 127.5; u8 keeps the bytes.
 */
export function writeSample(
  rgb: Uint8Array,
  flip: boolean,
  out: Float32Array | Uint8Array,
  slot: number,
  spec: OutputSpec,
): void {
  if (spec.layout === "nhwc") writeNhwc(rgb, flip, out, slot, spec.size);
  else if (out instanceof Float32Array) writeNchwF32(rgb, flip, out, slot, spec.size);
  else writeNchwU8(rgb, flip, out, slot, spec.size);
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** Mirrors HWC RGB rows in place (the u8 NHWC path, where the decoder wrote the batch row). */
export function flipInPlace(rgb: Uint8Array, S: number): void {
  if (LITTLE_ENDIAN && S % 8 === 0 && rgb.byteOffset % 4 === 0 && rgb.length >= 3 * S * S)
    flipWords(new Uint32Array(rgb.buffer, rgb.byteOffset, (3 * S * S) >> 2), S);
  else flipBytes(rgb, S);
}

/**
 * Four RGB pixels are three 32-bit words (S % 8 === 0: a whole number of such groups per half row): swapping word triples from both ends of a row, each
 * rebuilt with shifts, moves 4 pixels per step instead of 1 (~2.5x faster than byte by byte).
 * Little-endian: byte k of a word is bits 8k..8k+7, so [R0 G0 B0 R1][G1 B1 R2 G2][B2 R3 G3 B3]
 * becomes [R3 G3 B3 R2][G2 B2 R1 G1][B1 R0 G0 B0].
 */
function flipWords(w: Uint32Array, S: number): void {
  const rowWords = (3 * S) >> 2;
  for (let y = 0; y < S; y++) {
    let a = y * rowWords;
    let b = a + rowWords - 3;
    for (; a < b; a += 3, b -= 3) {
      const a0 = w[a]!;
      const a1 = w[a + 1]!;
      const a2 = w[a + 2]!;
      const b0 = w[b]!;
      const b1 = w[b + 1]!;
      const b2 = w[b + 2]!;
      w[a] = (b2 >>> 8) | ((b1 & 0xff0000) << 8);
      w[a + 1] = (b1 >>> 24) | ((b2 & 0xff) << 8) | ((b0 >>> 24) << 16) | ((b1 & 0xff) << 24);
      w[a + 2] = ((b1 >>> 8) & 0xff) | ((b0 & 0xffffff) << 8);
      w[b] = (a2 >>> 8) | ((a1 & 0xff0000) << 8);
      w[b + 1] = (a1 >>> 24) | ((a2 & 0xff) << 8) | ((a0 >>> 24) << 16) | ((a1 & 0xff) << 24);
      w[b + 2] = ((a1 >>> 8) & 0xff) | ((a0 & 0xffffff) << 8);
    }
  }
}

function flipBytes(rgb: Uint8Array, S: number): void {
  for (let y = 0; y < S; y++) {
    let a = y * S * 3;
    let b = a + (S - 1) * 3;
    for (; a < b; a += 3, b -= 3) {
      const r = rgb[a]!;
      const g = rgb[a + 1]!;
      const bl = rgb[a + 2]!;
      rgb[a] = rgb[b]!;
      rgb[a + 1] = rgb[b + 1]!;
      rgb[a + 2] = rgb[b + 2]!;
      rgb[b] = r;
      rgb[b + 1] = g;
      rgb[b + 2] = bl;
    }
  }
}

// One small function per output kind: each stays monomorphic, which V8 compiles to a tight loop
// (a single function branching on the kind ran ~1.5x slower; this is every worker's hot path).

/**
 * A little-endian word view of HWC RGB rows when four pixels are exactly three words everywhere
 * (S % 4 === 0 and an aligned buffer): the NCHW writers then read 3 words per 4 pixels instead of
 * 12 bytes. null where that does not hold (they fall back to byte reads).
 */
function rgbWords(rgb: Uint8Array, S: number): Uint32Array | null {
  return LITTLE_ENDIAN && S % 4 === 0 && rgb.byteOffset % 4 === 0 && rgb.length >= 3 * S * S
    ? new Uint32Array(rgb.buffer, rgb.byteOffset, (3 * S * S) >> 2)
    : null;
}

function writeNchwF32(rgb: Uint8Array, flip: boolean, out: Float32Array, slot: number, S: number): void {
  const plane = S * S;
  const lut = NORM;
  const w = rgbWords(rgb, S);
  if (!w) return writeNchwF32Bytes(rgb, flip, out, slot, S);
  // Pixels x..x+3 of a row, from words [R0 G0 B0 R1][G1 B1 R2 G2][B2 R3 G3 B3], go to columns
  // o..o+3 (o-3..o reversed when flipped) of the three planes.
  const st = flip ? -1 : 1;
  const g = plane;
  const b = 2 * plane;
  for (let y = 0; y < S; y++) {
    let wi = (y * S * 3) >> 2;
    let o = slot * 3 * plane + y * S + (flip ? S - 1 : 0);
    for (let x = 0; x < S; x += 4, wi += 3, o += 4 * st) {
      const w0 = w[wi]!;
      const w1 = w[wi + 1]!;
      const w2 = w[wi + 2]!;
      out[o] = lut[w0 & 255]!;
      out[o + g] = lut[(w0 >>> 8) & 255]!;
      out[o + b] = lut[(w0 >>> 16) & 255]!;
      out[o + st] = lut[w0 >>> 24]!;
      out[o + st + g] = lut[w1 & 255]!;
      out[o + st + b] = lut[(w1 >>> 8) & 255]!;
      out[o + 2 * st] = lut[(w1 >>> 16) & 255]!;
      out[o + 2 * st + g] = lut[w1 >>> 24]!;
      out[o + 2 * st + b] = lut[w2 & 255]!;
      out[o + 3 * st] = lut[(w2 >>> 8) & 255]!;
      out[o + 3 * st + g] = lut[(w2 >>> 16) & 255]!;
      out[o + 3 * st + b] = lut[w2 >>> 24]!;
    }
  }
}

function writeNchwF32Bytes(rgb: Uint8Array, flip: boolean, out: Float32Array, slot: number, S: number): void {
  const plane = S * S;
  const st = flip ? -3 : 3;
  const lut = NORM;
  for (let y = 0; y < S; y++) {
    let s = flip ? (y * S + S - 1) * 3 : y * S * 3;
    let o = slot * 3 * plane + y * S;
    for (let x = 0; x < S; x++, s += st, o++) {
      out[o] = lut[rgb[s]!]!;
      out[o + plane] = lut[rgb[s + 1]!]!;
      out[o + 2 * plane] = lut[rgb[s + 2]!]!;
    }
  }
}

function writeNchwU8(rgb: Uint8Array, flip: boolean, out: Uint8Array, slot: number, S: number): void {
  const plane = S * S;
  const w = rgbWords(rgb, S);
  // The planes' rows are word-aligned too when S % 4 === 0: 3 word reads, 3 word writes per 4 pixels.
  if (!w || out.byteOffset % 4 !== 0) return writeNchwU8Bytes(rgb, flip, out, slot, S);
  const ow = new Uint32Array(out.buffer, out.byteOffset, out.length >> 2);
  const pw = plane >> 2;
  for (let y = 0; y < S; y++) {
    let wi = (y * S * 3) >> 2;
    const row = (slot * 3 * plane + y * S) >> 2;
    if (!flip) {
      for (let o = row; o < row + (S >> 2); o++, wi += 3) {
        const w0 = w[wi]!;
        const w1 = w[wi + 1]!;
        const w2 = w[wi + 2]!;
        // R0 R1 R2 R3 / G0 G1 G2 G3 / B0 B1 B2 B3
        ow[o] = (w0 & 0xff) | ((w0 >>> 16) & 0xff00) | ((w1 & 0xff0000) | ((w2 & 0xff00) << 16));
        ow[o + pw] =
          ((w0 >>> 8) & 0xff) | ((w1 & 0xff) << 8) | ((w1 >>> 8) & 0xff0000) | ((w2 & 0xff0000) << 8);
        ow[o + 2 * pw] = ((w0 >>> 16) & 0xff) | (w1 & 0xff00) | ((w2 & 0xff) << 16) | (w2 & 0xff000000);
      }
    } else {
      for (let o = row + (S >> 2) - 1; o >= row; o--, wi += 3) {
        const w0 = w[wi]!;
        const w1 = w[wi + 1]!;
        const w2 = w[wi + 2]!;
        // R3 R2 R1 R0 / G3 G2 G1 G0 / B3 B2 B1 B0
        ow[o] = ((w2 >>> 8) & 0xff) | ((w1 >>> 8) & 0xff00) | ((w0 & 0xff000000) >>> 8) | ((w0 & 0xff) << 24);
        ow[o + pw] =
          ((w2 >>> 16) & 0xff) | ((w1 >>> 16) & 0xff00) | ((w1 & 0xff) << 16) | ((w0 & 0xff00) << 16);
        ow[o + 2 * pw] = (w2 >>> 24) | ((w2 & 0xff) << 8) | ((w1 & 0xff00) << 8) | ((w0 & 0xff0000) << 8);
      }
    }
  }
}

function writeNchwU8Bytes(rgb: Uint8Array, flip: boolean, out: Uint8Array, slot: number, S: number): void {
  const plane = S * S;
  const st = flip ? -3 : 3;
  for (let y = 0; y < S; y++) {
    let s = flip ? (y * S + S - 1) * 3 : y * S * 3;
    let o = slot * 3 * plane + y * S;
    for (let x = 0; x < S; x++, s += st, o++) {
      out[o] = rgb[s]!;
      out[o + plane] = rgb[s + 1]!;
      out[o + 2 * plane] = rgb[s + 2]!;
    }
  }
}

function writeNhwc(
  rgb: Uint8Array,
  flip: boolean,
  out: Float32Array | Uint8Array,
  slot: number,
  S: number,
): void {
  const row = S * 3;
  const base = slot * S * row;
  const f32 = out instanceof Float32Array;
  for (let y = 0; y < S; y++) {
    if (!flip && !f32) {
      out.set(rgb.subarray(y * row, (y + 1) * row), base + y * row);
      continue;
    }
    let s = flip ? y * row + row - 3 : y * row;
    const st = flip ? -3 : 3;
    let o = base + y * row;
    for (let x = 0; x < S; x++, s += st, o += 3) {
      out[o] = f32 ? NORM[rgb[s]!]! : rgb[s]!;
      out[o + 1] = f32 ? NORM[rgb[s + 1]!]! : rgb[s + 1]!;
      out[o + 2] = f32 ? NORM[rgb[s + 2]!]! : rgb[s + 2]!;
    }
  }
}
