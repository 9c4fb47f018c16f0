// The decode kernel's fast paths against plain reference versions of the same operations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import {
  DataLoader,
  FileCache,
  ImageDecoder,
  JPEG_MODES,
  MaskBank,
  RecDataset,
  RecordIOWriter,
  packIR,
  readSample,
  readSampleReused,
  synthFace,
  encodeJpeg,
} from "../../src/data/index.ts";
import jpegTurbo from "@julusian/jpeg-turbo";
import { flipInPlace, writeSample } from "../../src/data/decode.ts";
import { type MaskTile, blendTile } from "../../src/data/mask/render.ts";
import type { RGB } from "../../src/data/mask/shapes.ts";
import { tinyRec, tmp } from "./helpers.ts";

const mirror = (rgb: Uint8Array, S: number): Uint8Array => {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++)
      for (let c = 0; c < 3; c++) out[(y * S + x) * 3 + c] = rgb[(y * S + S - 1 - x) * 3 + c]!;
  return out;
};

test("flipInPlace mirrors rows exactly, on the word path (S % 8 == 0) and the byte path", () => {
  for (const S of [112, 8, 16, 4, 12, 7, 1]) {
    const img = Uint8Array.from({ length: 3 * S * S }, (_, i) => (i * 7919 + 13) & 255);
    const a = img.slice();
    flipInPlace(a, S);
    assert.deepEqual(a, mirror(img, S), `S = ${S}`);
    flipInPlace(a, S);
    assert.deepEqual(a, img, `S = ${S}: twice is the identity`);
  }
  // A row of a batch buffer at an offset that is not a multiple of 4 takes the byte path.
  const S = 16;
  const buf = new Uint8Array(3 * S * S + 1);
  const view = buf.subarray(1);
  view.set(Uint8Array.from({ length: 3 * S * S }, (_, i) => i & 255));
  const want = mirror(view, S);
  flipInPlace(view, S);
  assert.deepEqual(view, want);
});

/** The blend in floating point, from the tile's 0..255 alpha, shade and pattern planes. */
function blendReference(rgb: Uint8Array, t: MaskTile, colour: RGB, pc: RGB): void {
  for (let i = 0; i < t.size * t.size; i++) {
    const A = t.alpha[i]! / 255;
    if (A === 0) continue;
    const sh = t.shade[i]! / 255;
    const pw = t.pattern[i]! / 255;
    for (let c = 0; c < 3; c++) {
      const v = (colour[c]! + (pc[c]! - colour[c]!) * pw) * sh;
      rgb[3 * i + c] = Math.round(rgb[3 * i + c]! + (v - rgb[3 * i + c]!) * A);
    }
  }
}

test("the integer mask blend is within 1 of the exact blend, and touches only covered pixels", async () => {
  const bank = await MaskBank.create({ seed: 3, variants: 4 });
  const colours: [RGB, RGB][] = [
    [
      [0, 0, 0],
      [255, 255, 255],
    ],
    [
      [255, 255, 255],
      [0, 0, 0],
    ],
    [
      [90, 160, 210],
      [200, 40, 40],
    ],
  ];
  for (const [k, t] of bank.tiles.entries()) {
    const [colour, pc] = colours[k % colours.length]!;
    const { rgb } = synthFace(k, 0, 0);
    const fast = Uint8Array.from(rgb);
    const ref = Uint8Array.from(rgb);
    blendTile(fast, 112, t, colour, pc);
    blendReference(ref, t, colour, pc);
    let worst = 0;
    for (let i = 0; i < fast.length; i++) {
      worst = Math.max(worst, Math.abs(fast[i]! - ref[i]!));
      if (t.alpha[Math.floor(i / 3)] === 0) assert.equal(fast[i], rgb[i], `uncovered byte ${i} changed`);
    }
    assert.ok(worst <= 1, `tile ${k} (${t.params.kind}): off by ${worst}`);
  }
});

test("readSampleReused gives readSample's label and bytes, including for multi-part records", async () => {
  const dir = await tinyRec(3, 3);
  const ds = new RecDataset(dir);
  const a = new FileCache();
  const b = new FileCache();
  try {
    for (let i = 0; i < ds.length; i++) {
      const want = readSample(ds.locate(i), a);
      const got = readSampleReused(ds.locate(i), b);
      assert.equal(got.label, want.label);
      assert.deepEqual(Buffer.from(got.bytes), want.bytes);
    }
  } finally {
    ds.close();
  }
  // A payload holding the magic number at an aligned offset is written in parts; a record
  // bigger than the first read and float labels (flag > 0) take the other branches.
  const d2 = tmp("reused");
  const magic = Buffer.from([0x0a, 0x23, 0xd7, 0xce]);
  const jpg = encodeJpeg(synthFace(1, 0, 0).rgb, 112, 90);
  const split = Buffer.concat([jpg.subarray(0, 8), magic, jpg.subarray(8)]);
  const big = Buffer.alloc(40000, 7);
  const w = new RecordIOWriter(path.join(d2, "train.rec"), path.join(d2, "train.idx"));
  w.write(0, packIR({ label: 2, id: 0, id2: 0 }, split));
  w.write(1, packIR({ label: 5, id: 1, id2: 0 }, big));
  w.write(2, packIR({ label: Float32Array.of(4, 9), id: 2, id2: 0 }, jpg));
  w.close();
  writeFileSync(path.join(d2, "property"), "10,112,112\n");
  const ds2 = new RecDataset(d2);
  const c = new FileCache();
  try {
    for (let i = 0; i < ds2.length; i++) {
      const want = readSample(ds2.locate(i), a);
      const got = readSampleReused(ds2.locate(i), c);
      assert.equal(got.label, want.label, `record ${i}`);
      assert.deepEqual(Buffer.from(got.bytes), want.bytes, `record ${i}`);
    }
    assert.deepEqual(readSampleReused(ds2.locate(0), c).bytes, split);
  } finally {
    ds2.close();
    a.close();
    b.close();
    c.close();
  }
});

test("writeSample: NCHW rows read as words equal the per-byte reference, flipped or not, any slot", () => {
  const reference = (rgb: Uint8Array, flip: boolean, S: number, f: (v: number) => number): number[] => {
    const out: number[] = [];
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < S; y++)
        for (let x = 0; x < S; x++) out.push(f(rgb[(y * S + (flip ? S - 1 - x : x)) * 3 + c]!));
    return out;
  };
  for (const S of [112, 8, 6])
    for (const flip of [false, true]) {
      const rgb = Uint8Array.from({ length: 3 * S * S }, (_, i) => (i * 7919 + 5) & 255);
      const n = 3 * S * S;
      const u8 = new Uint8Array(3 * n);
      const f32 = new Float32Array(3 * n);
      writeSample(rgb, flip, u8, 2, { size: S, dtype: "u8", layout: "nchw" });
      writeSample(rgb, flip, f32, 1, { size: S, dtype: "f32", layout: "nchw" });
      assert.deepEqual(
        [...u8.subarray(2 * n)],
        reference(rgb, flip, S, (v) => v),
        `u8 S=${S} flip=${flip}`,
      );
      assert.deepEqual(
        [...f32.subarray(n, 2 * n)],
        reference(rgb, flip, S, (v) => Math.fround((v - 127.5) / 127.5)),
        `f32 S=${S} flip=${flip}`,
      );
      assert.ok(u8.subarray(0, 2 * n).every((v) => v === 0) && f32.subarray(2 * n).every((v) => v === 0));
    }
});

test("JPEG modes: accurate is sharp's (and PIL's) decode exactly; fast-idct and fast stay within stated bounds", async (t) => {
  const dir = await tinyRec(4, 3);
  const ds = new RecDataset(dir);
  const files = new FileCache();
  const reference = new ImageDecoder(112, "sharp");
  const decoders = JPEG_MODES.map((m) => new ImageDecoder(112, "auto", m));
  if (decoders[0]!.jpegMode !== "accurate") {
    t.skip("TurboJPEG through koffi is not available here: the addon decodes with the fast IDCT");
    return;
  }
  // Bounds per channel value: measured over 1000 synthetic faces, fast-idct max 16 / mean 1.04,
  // fast max 75 / mean 1.61.
  const bounds: Record<string, [number, number]> = {
    accurate: [0, 0],
    "fast-idct": [24, 1.5],
    fast: [96, 2.5],
  };
  try {
    const worst = decoders.map(() => 0);
    const sum = decoders.map(() => 0);
    for (let i = 0; i < ds.length; i++) {
      const { bytes } = readSample(ds.locate(i), files);
      const want = await reference.decode(bytes);
      decoders.forEach((d, k) => {
        const got = d.decode(bytes) as Uint8Array;
        for (let j = 0; j < got.length; j++) {
          const diff = Math.abs(got[j]! - want[j]!);
          sum[k]! += diff;
          worst[k] = Math.max(worst[k]!, diff);
        }
      });
      // The addon (the fallback where koffi is missing) is the fast-idct decode, byte for byte.
      const addon = jpegTurbo.decompressSync(bytes, { format: jpegTurbo.FORMAT_RGB }).data;
      assert.deepEqual(Buffer.from(decoders[1]!.decode(bytes) as Uint8Array), addon);
    }
    decoders.forEach((d, k) => {
      const mean = sum[k]! / (ds.length * 3 * 112 * 112);
      const [maxBound, meanBound] = bounds[d.jpegMode]!;
      assert.equal(d.stats.turbo, (k === 1 ? 2 : 1) * ds.length);
      assert.ok(
        worst[k]! <= maxBound && mean <= meanBound,
        `${d.jpegMode}: max ${worst[k]}, mean ${mean.toFixed(3)} vs bounds ${maxBound}, ${meanBound}`,
      );
    });
    assert.ok(worst[1]! > 0 && worst[2]! > worst[1]!, "the fast modes are expected to differ");
  } finally {
    files.close();
    ds.close();
  }
});

test("a JPEG that is not size x size, or is damaged, leaves the fast path for sharp", async () => {
  const dec = new ImageDecoder(112);
  const small = encodeJpeg(synthFace(1, 0, 0, 56).rgb, 56, 90);
  const resized = await dec.decode(small);
  assert.equal(resized.length, 3 * 112 * 112);
  assert.deepEqual(dec.stats, { turbo: 0, sharp: 1 });
  const good = encodeJpeg(synthFace(1, 0, 0).rgb, 112, 90);
  await assert.rejects(async () => dec.decode(good.subarray(0, good.length >> 1)));
  assert.deepEqual(dec.stats, { turbo: 0, sharp: 2 });
  const target = Buffer.alloc(3 * 112 * 112);
  assert.equal(dec.decodeInto(good, target), target);
  assert.deepEqual(dec.stats, { turbo: 1, sharp: 2 });
  assert.throws(() => new ImageDecoder(112, "auto", "fastest" as never), /data\.jpegMode must be one of/);
});

test("the loader hands jpegMode to its workers, and names the key when it is wrong", async () => {
  const dir = await tinyRec(2, 2);
  await assert.rejects(
    DataLoader.open(dir, { batchSize: 2, jpegMode: "fastest" as never }),
    /data\.jpegMode must be one of accurate, fast-idct, fast/,
  );
  const ds = new RecDataset(dir);
  const files = new FileCache();
  try {
    for (const jpegMode of JPEG_MODES) {
      const L = await DataLoader.open(dir, {
        batchSize: ds.length,
        shuffle: false,
        maskProb: 0,
        flipProb: 0,
        dtype: "u8",
        layout: "nhwc",
        workers: 1,
        jpegMode,
      });
      try {
        const dec = new ImageDecoder(112, "auto", jpegMode);
        for await (const b of L.epoch(0))
          for (let i = 0; i < ds.length; i++) {
            const want = dec.decode(readSample(ds.locate(b.indices[i]!), files).bytes) as Uint8Array;
            assert.deepEqual(
              Buffer.from(b.images.subarray(i * want.length, (i + 1) * want.length)),
              Buffer.from(want),
              jpegMode,
            );
          }
      } finally {
        await L.close();
      }
    }
  } finally {
    files.close();
    ds.close();
  }
});
