import { test } from "node:test";
import assert from "node:assert/strict";
import sharp from "sharp";
import {
  ARCFACE_TEMPLATE,
  MASK_KINDS,
  MaskBank,
  Rng,
  maskImage,
  renderMaskTile,
  sampleMaskParams,
  similarityTransform,
  synthFace,
  type Landmarks5,
} from "../../src/data/index.ts";
import { applyAffine } from "../../src/data/mask/template.ts";

/** Nose tip to chin, mouth corners, lower cheeks (template pixels). */
const MUST_COVER: [number, number][] = [
  [56, 73],
  [56, 80],
  [50, 76],
  [62, 76],
  [41.5, 92.4],
  [70.7, 92.2],
  [56, 92],
  [56, 100],
  [56, 110],
  [45, 104],
  [67, 104],
];
/** Each eye's neighbourhood: 9 px either side, 6 px above and below its centre. */
const inEyes = (x: number, y: number): boolean =>
  ARCFACE_TEMPLATE.slice(0, 2).some(([ex, ey]) => Math.abs(x + 0.5 - ex) <= 9 && Math.abs(y + 0.5 - ey) <= 6);

test("every mask kind covers the nose-to-chin region of the template and leaves the eyes untouched", async () => {
  const rng = new Rng(11);
  for (const kind of MASK_KINDS)
    for (let i = 0; i < 15; i++) {
      const p = sampleMaskParams(rng, kind);
      const t = await renderMaskTile(p);
      for (const [x, y] of MUST_COVER) {
        const a = t.alpha[Math.floor(y) * 112 + Math.floor(x)]!;
        assert.ok(
          a >= 250,
          `${kind} #${i} (top ${p.top.toFixed(1)}, rot ${p.rotation.toFixed(1)}): alpha ${a} at (${x}, ${y})`,
        );
      }
      for (let y = 0; y < 112; y++)
        for (let x = 0; x < 112; x++)
          if (inEyes(x, y))
            assert.equal(t.alpha[y * 112 + x], 0, `${kind} #${i} touches the eyes at (${x}, ${y})`);
    }
});

test("the training-time blend changes the lower face and not one eye pixel", async () => {
  const bank = await MaskBank.create({ seed: 5, variants: 3 });
  for (let s = 0; s < 12; s++) {
    const { rgb } = synthFace(3, s, 0);
    const before = Uint8Array.from(rgb);
    bank.apply(rgb, 112, 1000 + s);
    let changed = 0;
    for (let y = 0; y < 112; y++)
      for (let x = 0; x < 112; x++) {
        const o = 3 * (y * 112 + x);
        const diff = rgb[o] !== before[o] || rgb[o + 1] !== before[o + 1] || rgb[o + 2] !== before[o + 2];
        if (inEyes(x, y)) assert.ok(!diff, `eye pixel (${x}, ${y}) changed`);
        if (diff && y > 72) changed++;
      }
    assert.ok(changed > 2500, `only ${changed} lower-face pixels changed`);
  }
});

test("similarityTransform recovers a rotation, scale and shift", () => {
  const th = 0.3;
  const m: [number, number, number, number, number, number] = [
    1.7 * Math.cos(th),
    1.7 * Math.sin(th),
    -1.7 * Math.sin(th),
    1.7 * Math.cos(th),
    20,
    -5,
  ];
  const to = ARCFACE_TEMPLATE.map((p) => applyAffine(m, p));
  const got = similarityTransform(ARCFACE_TEMPLATE, to);
  got.forEach((v, i) => assert.ok(Math.abs(v - m[i]!) < 1e-9));
});

test("with 5 landmarks, a face that is not template-aligned gets its mask in the right place", async () => {
  // An aligned face placed at 2x scale, shifted, in a 300x260 image: landmarks follow.
  const { rgb } = synthFace(9, 1, 0);
  const face = await sharp(Buffer.from(rgb), { raw: { width: 112, height: 112, channels: 3 } })
    .resize(224, 224)
    .png()
    .toBuffer();
  const img = await sharp({ create: { width: 300, height: 260, channels: 3, background: "#808080" } })
    .composite([{ input: face, left: 40, top: 20 }])
    .png()
    .toBuffer();
  const lm = ARCFACE_TEMPLATE.map(([x, y]) => [40 + 2 * x, 20 + 2 * y]) as Landmarks5;
  const { image } = await maskImage(img, { seed: 4, landmarks: lm, kind: "surgical" });
  const a = await sharp(img).removeAlpha().raw().toBuffer();
  const b = await sharp(image).removeAlpha().raw().toBuffer();
  const px = (buf: Buffer, x: number, y: number): number[] => [
    ...buf.subarray(3 * (y * 300 + x), 3 * (y * 300 + x) + 3),
  ];
  for (const [tx, ty] of MUST_COVER.slice(0, 8)) {
    const [x, y] = [Math.round(40 + 2 * tx), Math.round(20 + 2 * ty)];
    assert.notDeepEqual(px(b, x, y), px(a, x, y), `no mask at template (${tx}, ${ty})`);
  }
  for (const [ex, ey] of ARCFACE_TEMPLATE.slice(0, 2))
    for (let dy = -10; dy <= 10; dy += 2)
      for (let dx = -16; dx <= 16; dx += 2) {
        const [x, y] = [Math.round(40 + 2 * ex + dx), Math.round(20 + 2 * ey + dy)];
        // PNG round trip is lossless, so untouched pixels are identical.
        assert.deepEqual(px(b, x, y), px(a, x, y), `eye area changed at (${x}, ${y})`);
      }
});
