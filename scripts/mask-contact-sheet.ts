// Writes docs/masked-faces.png: synthetic identities (rows) with the training-time mask renderer
// applied to most of their images, so a person can judge faces and masks at a glance.
// Run: node --import tsx scripts/mask-contact-sheet.ts [out.png]
import sharp from "sharp";
import { MaskBank, synthFace } from "../src/data/index.ts";

const rows = 6;
const cols = 8;
const S = 112;
const out = process.argv[2] ?? "docs/masked-faces.png";
const bank = await MaskBank.create({ seed: 0, variants: 24 });
const sheet = Buffer.alloc(cols * S * rows * S * 3, 255);
for (let r = 0; r < rows; r++)
  for (let c = 0; c < cols; c++) {
    const { rgb } = synthFace(42, r, c, S);
    if (c > 0) bank.apply(rgb, S, r * 1000 + c); // column 0: the unmasked face
    for (let y = 0; y < S; y++)
      Buffer.from(rgb.buffer, rgb.byteOffset + y * S * 3, S * 3).copy(
        sheet,
        ((r * S + y) * cols * S + c * S) * 3,
      );
  }
await sharp(sheet, { raw: { width: cols * S, height: rows * S, channels: 3 } })
  .png({ compressionLevel: 9 })
  .toFile(out);
console.log(`wrote ${out}`);
