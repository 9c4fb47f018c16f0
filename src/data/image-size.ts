// What an encoded image claims about itself, read from its header bytes before anything is
// decoded, and the one pixel limit every decode in src/data enforces. A few KB of JPEG can claim
// 37000 x 37000 pixels: a decode buffer sized from that claim would take 4 GB before the decoder
// found out the data is not there.
import type { SharpOptions } from "sharp";

/**
 * The largest image decoded anywhere: sharp's own default `limitInputPixels` (16383 x 16383),
 * which the loaders always decoded under, now also checked before any buffer is sized from a
 * header. (src/eval decodes with sharp's default, the same number: that layer cannot import this.)
 */
export const MAX_IMAGE_PIXELS = 0x3fff * 0x3fff;

/** Options for every sharp() call on untrusted image bytes. */
export const SHARP_INPUT: SharpOptions = { failOn: "warning", limitInputPixels: MAX_IMAGE_PIXELS };

/** Throws when width x height is over MAX_IMAGE_PIXELS. */
export function checkImagePixels(width: number, height: number): void {
  if (!(width * height <= MAX_IMAGE_PIXELS))
    throw new Error(
      `image of ${width}x${height} pixels is over the limit of ${MAX_IMAGE_PIXELS} pixels (16383x16383)`,
    );
}

/** Format and size from the image's header bytes, or a reason it is not a whole image. */
export function sniffImage(b: Buffer): { format: string; width: number; height: number } | { error: string } {
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    let end = b.length;
    while (end > 2 && b[end - 1] === 0) end--; // some writers pad with zeros
    if (b[end - 2] !== 0xff || b[end - 1] !== 0xd9)
      return { error: "JPEG is cut short (no end-of-image marker)" };
    let p = 2;
    while (p + 9 < b.length) {
      if (b[p] !== 0xff) return { error: `JPEG marker expected at byte ${p}` };
      const m = b[p + 1] as number;
      if (m === 0xff) {
        p++;
        continue;
      }
      const len = b.readUInt16BE(p + 2);
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc)
        return { format: "jpeg", height: b.readUInt16BE(p + 5), width: b.readUInt16BE(p + 7) };
      if (m === 0xda) break;
      p += 2 + len;
    }
    return { error: "JPEG has no frame header" };
  }
  if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(12) === 0x49484452) {
    if (b.indexOf("IEND", Math.max(0, b.length - 16)) < 0)
      return { error: "PNG is cut short (no IEND chunk)" };
    return { format: "png", width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }
  return { error: "not a JPEG or PNG image" };
}

/** Refuses an image whose header claims more than MAX_IMAGE_PIXELS (unreadable headers pass). */
export function checkImageHeader(bytes: Buffer): void {
  const s = sniffImage(bytes);
  if (!("error" in s)) checkImagePixels(s.width, s.height);
}
