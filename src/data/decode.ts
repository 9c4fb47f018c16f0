// Turning encoded images into batch rows: decode, optional mask, optional horizontal flip, and the
// layout/dtype change, writing straight into the batch's shared buffer.
//
// JPEGs already at the target size (every image of an InsightFace/WebFace pack) go through
// libjpeg-turbo, synchronously, ~60 us for 112x112. Everything else (PNG, other sizes, CMYK,
// anything libjpeg-turbo refuses) goes through sharp, whose libvips pipeline costs ~1 ms per image
// whatever its size: measured, the reason for the fast path (see bench/data.bench.ts).
import jpegTurbo from "@julusian/jpeg-turbo";
import sharp from "sharp";

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

export class ImageDecoder {
  /** libjpeg-turbo writes here; big enough for any image that is then resized by sharp. */
  private readonly scratch: Buffer;
  readonly stats = { turbo: 0, sharp: 0 };

  constructor(
    readonly size: number,
    readonly choice: DecoderChoice = "auto",
  ) {
    this.scratch = Buffer.alloc(Math.max(size * size * 3, 512 * 512 * 3));
  }

  /**
   * HWC RGB bytes of size x size. Synchronous on the fast path; a promise when sharp is needed.
   * The returned array may be reused by the next call.
   */
  decode(bytes: Buffer): Uint8Array | Promise<Uint8Array> {
    if (this.choice === "auto" && isJpeg(bytes)) {
      try {
        const r = jpegTurbo.decompressSync(bytes, this.scratch, { format: jpegTurbo.FORMAT_RGB });
        if (r.width === this.size && r.height === this.size) {
          this.stats.turbo++;
          return this.scratch.subarray(0, this.size * this.size * 3);
        }
      } catch {
        // Fall through: sharp either manages (e.g. CMYK) or reports the real problem.
      }
    }
    return this.decodeWithSharp(bytes);
  }

  private async decodeWithSharp(bytes: Buffer): Promise<Uint8Array> {
    this.stats.sharp++;
    const { data, info } = await sharp(bytes, { failOn: "warning" })
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
  const S = spec.size;
  const plane = S * S;
  const base = slot * 3 * plane;
  const f32 = out instanceof Float32Array;
  if (spec.layout === "nhwc") {
    for (let y = 0; y < S; y++) {
      let s = flip ? (y * S + S - 1) * 3 : y * S * 3;
      const st = flip ? -3 : 3;
      let o = base + y * S * 3;
      for (let x = 0; x < S; x++, s += st, o += 3) {
        const r = rgb[s] as number;
        const g = rgb[s + 1] as number;
        const b = rgb[s + 2] as number;
        out[o] = f32 ? (NORM[r] as number) : r;
        out[o + 1] = f32 ? (NORM[g] as number) : g;
        out[o + 2] = f32 ? (NORM[b] as number) : b;
      }
    }
    return;
  }
  // Separate loops per dtype keep each monomorphic (the hot path of every worker).
  if (f32) {
    for (let y = 0; y < S; y++) {
      let s = flip ? (y * S + S - 1) * 3 : y * S * 3;
      const st = flip ? -3 : 3;
      let o = base + y * S;
      for (let x = 0; x < S; x++, s += st, o++) {
        out[o] = NORM[rgb[s] as number] as number;
        out[o + plane] = NORM[rgb[s + 1] as number] as number;
        out[o + 2 * plane] = NORM[rgb[s + 2] as number] as number;
      }
    }
  } else {
    for (let y = 0; y < S; y++) {
      let s = flip ? (y * S + S - 1) * 3 : y * S * 3;
      const st = flip ? -3 : 3;
      let o = base + y * S;
      for (let x = 0; x < S; x++, s += st, o++) {
        out[o] = rgb[s] as number;
        out[o + plane] = rgb[s + 1] as number;
        out[o + 2 * plane] = rgb[s + 2] as number;
      }
    }
  }
}
