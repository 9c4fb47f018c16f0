// A few KB of JPEG whose header claims 37000 x 37000 pixels (4.1 GB of RGB) is refused by every
// decode path, by one limit, before any buffer is sized from the claim. Its own file: the
// process's peak RSS then tells whether such a buffer was ever allocated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DataLoader, type BadSampleWarning } from "../../src/data/loader.ts";
import { ImageDecoder } from "../../src/data/decode.ts";
import { MAX_IMAGE_PIXELS, sniffImage } from "../../src/data/image-size.ts";
import { inspectDataset } from "../../src/data/info.ts";
import { maskImage } from "../../src/data/mask/render.ts";
import { tinyFolder } from "./helpers.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");
const REFUSED = `image of 37000x37000 pixels is over the limit of ${MAX_IMAGE_PIXELS} pixels (16383x16383)`;

/** Rewrites a JPEG's frame header to claim side x side pixels (the data stays 112 x 112). */
function claimSize(file: string, side: number): Buffer {
  const b = readFileSync(file);
  for (let p = 2; p + 9 < b.length; p += 2 + b.readUInt16BE(p + 2)) {
    const m = b[p + 1]!;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      b.writeUInt16BE(side, p + 5);
      b.writeUInt16BE(side, p + 7);
      writeFileSync(file, b);
      return b;
    }
  }
  throw new Error(`${file}: no frame header`);
}

test("a JPEG claiming 37000x37000 is refused by data info --decode, the loader and mask, before allocating", async () => {
  const dir = await tinyFolder(2, 2);
  const big = path.join(dir, "000000", "001.jpg");
  const bytes = claimSize(big, 37000);
  assert.ok(bytes.length < 8192);
  assert.deepEqual(sniffImage(bytes), { format: "jpeg", width: 37000, height: 37000 });

  const info = await inspectDataset(dir, { decode: true });
  assert.deepEqual(
    info.corrupt.map((c) => [c.where, c.reason]),
    [[big, `cannot decode: ${REFUSED}`]],
  );

  const warnings: BadSampleWarning[] = [];
  const L = await DataLoader.open(dir, { batchSize: 3, workers: 1, maskProb: 0, maxBadFraction: 0.5 });
  L.on("warning", (w) => warnings.push(w));
  try {
    for await (const _ of L.epoch(0));
  } finally {
    await L.close();
  }
  assert.deepEqual(
    warnings.map((w) => [w.where, w.reason]),
    [[big, REFUSED]],
  );

  await assert.rejects(maskImage(bytes, { seed: 1 }), { message: REFUSED });
  assert.throws(() => new ImageDecoder(37000), { message: REFUSED });

  // 4.1 GB would have been allocated (and zeroed) for the decode buffer.
  const peakMB = process.resourceUsage().maxRSS / 1024;
  assert.ok(peakMB < 1500, `peak RSS ${peakMB.toFixed(0)} MB`);
});

test("mfr data info --decode names the file and the limit, as users run it", async () => {
  const dir = await tinyFolder(1, 2);
  const big = path.join(dir, "000000", "000.jpg");
  claimSize(big, 37000);
  const r = spawnSync(process.execPath, ["bin/mfr.js", "data", "info", "--decode", dir], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /corrupt\s+1\n/);
  assert.ok(r.stdout.includes(`  ${big}: cannot decode: ${REFUSED}`), r.stdout);
});
