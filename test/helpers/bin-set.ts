// A tiny arcface_torch-style .bin verification set written by the test itself: pickle protocol 4
// of (list of encoded images, list of issame), as Python 3's pickle.dump writes it, with images of
// synthetic identities (pair i: two photos of one identity when issame[i], else of two).
import fs from "node:fs";
import { encodeJpeg, synthFace } from "../../src/data/index.ts";

function pickle(images: readonly Uint8Array[], issame: readonly boolean[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x80, 4]), Buffer.from("](")];
  for (const img of images) {
    if (img.length < 256)
      parts.push(Buffer.from([0x43, img.length])); // SHORT_BINBYTES
    else {
      const len = Buffer.alloc(5);
      len[0] = 0x42; // BINBYTES
      len.writeUInt32LE(img.length, 1);
      parts.push(len);
    }
    parts.push(Buffer.from(img));
  }
  parts.push(Buffer.from("e](")); // APPENDS, then the issame list
  for (const s of issame) parts.push(Buffer.from([s ? 0x88 : 0x89])); // NEWTRUE / NEWFALSE
  parts.push(Buffer.from("e\x86.", "latin1")); // APPENDS, TUPLE2, STOP
  return Buffer.concat(parts);
}

/** Writes `pairs` pairs (alternately same and different identities) to file; returns issame. */
export function writeBinSet(file: string, pairs: number, seed = 7): boolean[] {
  const images: Uint8Array[] = [];
  const issame: boolean[] = [];
  for (let i = 0; i < pairs; i++) {
    const same = i % 2 === 0;
    const face = (id: number, k: number): Buffer => {
      const { rgb } = synthFace(seed, id, k);
      return encodeJpeg(rgb, 112);
    };
    images.push(face(i, 0), face(same ? i : i + 1000, 1));
    issame.push(same);
  }
  fs.writeFileSync(file, pickle(images, issame));
  return issame;
}
