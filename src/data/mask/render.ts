// Putting masks on faces. Two paths share the SVG shapes:
// - training (aligned faces, thousands per second): a bank of mask tiles is rendered once per
//   worker with sharp from recolourable SVG; each masked sample then picks a tile and colours and
//   alpha-blends it in an integer JS loop over the tile's covered pixels (a few us, vs ~1 ms for an
//   SVG render);
// - `mfr mask` (any image, optionally with 5 landmarks): the coloured SVG, mapped onto the face by
//   a similarity transform, is composited by sharp.
import sharp from "sharp";
import { MAX_IMAGE_PIXELS, checkImageHeader } from "../image-size.ts";
import { Rng, hash32 } from "../rng.ts";
import {
  MASK_KINDS,
  type MaskKind,
  type MaskParams,
  type RGB,
  maskSvg,
  sampleMaskColours,
  sampleMaskParams,
} from "./shapes.ts";
import { ARCFACE_TEMPLATE, type Landmarks5, similarityTransform } from "./template.ts";

export interface MaskTile {
  params: MaskParams;
  size: number;
  /** Coverage 0..255, shading 0..255 (255 = full colour), pattern weight 0..255; size x size. */
  alpha: Uint8Array;
  shade: Uint8Array;
  pattern: Uint8Array;
  /** Bounding box of alpha > 0: x0, y0, x1, y1 (exclusive). */
  box: [number, number, number, number];
  /**
   * The covered pixels, for blending. Fully covered pixels (most of a mask) come as runs along
   * rows, `runs` = [byte offset 3 * pixel, length] pairs, with one factor word each in `solid`:
   * shade | pattern << 9 (each in 0..256, 256 = 1); they need no read of the face. Partly covered
   * ones come as [byte offset, factors | alpha << 18] pairs in `edge` (alpha 1..255 of 256).
   */
  runs: Int32Array;
  solid: Int32Array;
  edge: Int32Array;
  /** Some covered pixel has a pattern weight (patterned cloth masks); else a cheaper blend. */
  patterned: boolean;
}

/** Renders one recolourable tile for a `size` x `size` aligned face. */
export async function renderMaskTile(params: MaskParams, size = 112): Promise<MaskTile> {
  const s = size / 112;
  const svg = maskSvg(params, {
    width: size,
    height: size,
    transform: [s, 0, 0, s, 0, 0],
    recolourable: true,
  });
  const { data } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const n = size * size;
  const alpha = new Uint8Array(n);
  const shade = new Uint8Array(n);
  const pattern = new Uint8Array(n);
  let x0 = size,
    y0 = size,
    x1 = 0,
    y1 = 0;
  for (let i = 0; i < n; i++) {
    const a = data[4 * i + 3] as number;
    if (a === 0) continue;
    const r = data[4 * i] as number;
    const g = data[4 * i + 1] as number;
    alpha[i] = a;
    shade[i] = r;
    pattern[i] = r > 0 ? Math.round(255 * Math.max(0, 1 - g / r)) : 0;
    const x = i % size;
    const y = (i - x) / size;
    if (x < x0) x0 = x;
    if (y < y0) y0 = y;
    if (x >= x1) x1 = x + 1;
    if (y >= y1) y1 = y + 1;
  }
  // 0..255 -> 0..256, so that x * f >> 8 is exact at both ends.
  const q = (v: number): number => Math.round((v * 256) / 255);
  const runs: number[] = [];
  const solid: number[] = [];
  const edge: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = alpha[i]!;
    if (a === 0) continue;
    const f = q(shade[i]!) | (q(pattern[i]!) << 9);
    if (a !== 255) {
      edge.push(3 * i, f | (q(a) << 18));
      continue;
    }
    // extend the last run when this pixel follows it on the same row
    const last = runs.length - 2;
    if (last >= 0 && i % size !== 0 && runs[last]! + 3 * runs[last + 1]! === 3 * i) runs[last + 1]!++;
    else runs.push(3 * i, 1);
    solid.push(f);
  }
  return {
    params,
    size,
    alpha,
    shade,
    pattern,
    box: [x0, y0, x1, y1],
    runs: Int32Array.from(runs),
    patterned: pattern.some((v, i) => v > 0 && alpha[i]! > 0),
    solid: Int32Array.from(solid),
    edge: Int32Array.from(edge),
  };
}

/** A fixed set of mask tiles (the same for every worker given the same seed). */
export class MaskBank {
  private constructor(readonly tiles: MaskTile[]) {}

  static async create(opts: { seed?: number; variants?: number; size?: number } = {}): Promise<MaskBank> {
    const rng = new Rng(hash32(opts.seed ?? 0, 0x3a5c));
    const variants = opts.variants ?? 24;
    const params = Array.from({ length: variants * MASK_KINDS.length }, (_, i) =>
      sampleMaskParams(rng, MASK_KINDS[i % MASK_KINDS.length]),
    );
    const tiles: MaskTile[] = [];
    for (const p of params) tiles.push(await renderMaskTile(p, opts.size ?? 112));
    return new MaskBank(tiles);
  }

  /** Draws tile and colours for one sample from its mask seed, and blends it into `rgb`. */
  apply(rgb: Uint8Array, size: number, maskSeed: number): MaskTile {
    const rng = new Rng(maskSeed);
    const tile = this.tiles[rng.int(this.tiles.length)] as MaskTile;
    const { colour, patternColour } = sampleMaskColours(rng, tile.params.kind);
    blendTile(rgb, size, tile, colour, patternColour);
    return tile;
  }
}

/**
 * Alpha-blends a tile, coloured `colour` (and `patternColour` where patterned), into HWC RGB.
 * Integer arithmetic with 8-bit fractions over the covered pixels only; a value differs from the
 * exact blend by at most 1.
 */
export function blendTile(rgb: Uint8Array, size: number, t: MaskTile, colour: RGB, patternColour: RGB): void {
  if (t.size !== size) throw new Error(`mask tile is ${t.size}px but the image is ${size}px`);
  // Colour in 8.8 fixed point, plus the pattern colour's difference per 1/256 of pattern weight.
  const cr = colour[0] << 8;
  const cg = colour[1] << 8;
  const cb = colour[2] << 8;
  const dr = patternColour[0] - colour[0];
  const dg = patternColour[1] - colour[1];
  const db = patternColour[2] - colour[2];
  // (c + d * pattern) * shade: at most 65280 * 256, well inside int32; + 2^15 >> 16 rounds it to
  // the 0..255 value.
  const { runs, solid, edge } = t;
  if (t.patterned) blendRunsPatterned(rgb, runs, solid, cr, cg, cb, dr, dg, db);
  else blendRunsPlain(rgb, runs, solid, cr, cg, cb);
  for (let k = 0; k < edge.length; k += 2) {
    const o = edge[k]!;
    const f = edge[k + 1]!;
    const sh = f & 511;
    const pw = (f >>> 9) & 511;
    const a = f >>> 18;
    const na = 256 - a;
    rgb[o] = (rgb[o]! * na + (((cr + dr * pw) * sh + 32768) >> 16) * a + 128) >> 8;
    rgb[o + 1] = (rgb[o + 1]! * na + (((cg + dg * pw) * sh + 32768) >> 16) * a + 128) >> 8;
    rgb[o + 2] = (rgb[o + 2]! * na + (((cb + db * pw) * sh + 32768) >> 16) * a + 128) >> 8;
  }
}

function blendRunsPatterned(
  rgb: Uint8Array,
  runs: Int32Array,
  solid: Int32Array,
  cr: number,
  cg: number,
  cb: number,
  dr: number,
  dg: number,
  db: number,
): void {
  let j = 0;
  for (let r = 0; r < runs.length; r += 2) {
    const end = runs[r]! + 3 * runs[r + 1]!;
    for (let o = runs[r]!; o < end; o += 3) {
      const f = solid[j++]!;
      const sh = f & 511;
      const pw = f >>> 9;
      rgb[o] = ((cr + dr * pw) * sh + 32768) >> 16;
      rgb[o + 1] = ((cg + dg * pw) * sh + 32768) >> 16;
      rgb[o + 2] = ((cb + db * pw) * sh + 32768) >> 16;
    }
  }
}

/** The same without a pattern (every pattern weight 0): three of its six products go. */
function blendRunsPlain(
  rgb: Uint8Array,
  runs: Int32Array,
  solid: Int32Array,
  cr: number,
  cg: number,
  cb: number,
): void {
  let j = 0;
  for (let r = 0; r < runs.length; r += 2) {
    const end = runs[r]! + 3 * runs[r + 1]!;
    for (let o = runs[r]!; o < end; o += 3) {
      const sh = solid[j++]! & 511;
      rgb[o] = (cr * sh + 32768) >> 16;
      rgb[o + 1] = (cg * sh + 32768) >> 16;
      rgb[o + 2] = (cb * sh + 32768) >> 16;
    }
  }
}

/**
 * Draws a mask on an encoded image with sharp. Without landmarks the image is taken as an aligned
 * face and the template is scaled to its size; with them the template is mapped onto them.
 * Returns the encoded result in the input's format (JPEG quality 95 / PNG).
 */
export async function maskImage(
  input: Buffer,
  opts: { seed: number; landmarks?: Landmarks5; params?: MaskParams; kind?: MaskKind },
): Promise<{ image: Buffer; params: MaskParams }> {
  checkImageHeader(input); // in the words every decode uses; sharp's limit catches other formats
  const meta = await sharp(input, { limitInputPixels: MAX_IMAGE_PIXELS }).metadata();
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (!w || !h) throw new Error("image has no size");
  const params = opts.params ?? sampleMaskParams(new Rng(hash32(opts.seed, 0x6d61)), opts.kind);
  const transform = opts.landmarks
    ? similarityTransform(ARCFACE_TEMPLATE, opts.landmarks)
    : ([w / 112, 0, 0, h / 112, 0, 0] as const);
  const svg = maskSvg(params, { width: w, height: h, transform: [...transform] });
  let out = sharp(input, { limitInputPixels: MAX_IMAGE_PIXELS }).composite([
    { input: Buffer.from(svg), top: 0, left: 0 },
  ]);
  out = meta.format === "png" ? out.png() : out.jpeg({ quality: 95 });
  return { image: await out.toBuffer(), params };
}
