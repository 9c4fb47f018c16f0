import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Command } from "commander";
import { registerData } from "../../src/cli/commands/data.ts";
import { inspectDataset } from "../../src/data/index.ts";
import { tinyFolder, tinyRec } from "./helpers.ts";

/** Runs `mfr data info ...` through the command's own registration; returns what it printed. */
async function dataInfo(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerData(program);
  const lines: string[] = [];
  const log = console.log;
  console.log = (...xs: unknown[]) => void lines.push(xs.join(" "));
  try {
    await program.parseAsync(["node", "mfr", "data", "info", ...args]);
  } finally {
    console.log = log;
  }
  return lines.join("\n");
}

test("mfr data info --json prints exactly the documented object", async () => {
  const dir = await tinyRec(3, 4);
  const out = await dataInfo(dir, "--json");
  assert.deepEqual(JSON.parse(out), { records: 12, identities: 3, labels: { min: 0, max: 2 }, corrupt: [] });
  assert.equal(out.trim().split("\n").length, 1);
  const text = await dataInfo(dir);
  assert.match(text, /images\/identity\s+min 4, median 4, max 4/);
  assert.match(text, /image sizes\s+112x112 x12/);
  assert.match(text, /formats\s+jpeg x12/);
});

test("data info finds corrupt records (structure, truncated JPEG) and names them", async () => {
  const dir = await tinyRec(3, 3);
  const idx = readFileSync(path.join(dir, "train.idx"), "utf8").split("\n");
  const off = (k: number): number => Number(idx[k]!.split("\t")[1]);
  const rec = path.join(dir, "train.rec");
  const buf = readFileSync(rec);
  buf.writeUInt32LE(0x11111111, off(2)); // bad magic
  // Record 5: keep the RecordIO length, zero the JPEG's end so its end-of-image marker is gone.
  const len = buf.readUInt32LE(off(5) + 4) & ((1 << 29) - 1);
  buf.fill(0, off(5) + 8 + len - 200, off(5) + 8 + len);
  writeFileSync(rec, buf);
  const info = await inspectDataset(dir);
  assert.deepEqual(
    info.corrupt.map((c) => c.id),
    [2, 5],
  );
  assert.match(info.corrupt[0]!.where, /train\.rec record 2$/);
  assert.match(info.corrupt[0]!.reason, /bad magic/);
  assert.match(info.corrupt[1]!.reason, /cut short/);
  assert.equal(info.records, 9);
  assert.deepEqual(JSON.parse(await dataInfo(dir, "--json")).corrupt, [2, 5]);
});

test("data info on an image folder, with --decode catching damage inside the JPEG data", async () => {
  const dir = await tinyFolder(2, 3);
  const f = path.join(dir, "000001", "002.jpg");
  const b = readFileSync(f);
  b.fill(0xff, 200, b.length - 2); // keeps SOI/EOI, destroys the entropy-coded data
  writeFileSync(f, b);
  const quick = await inspectDataset(dir);
  assert.equal(quick.identities, 2);
  const full = await inspectDataset(dir, { decode: true });
  assert.deepEqual(
    full.corrupt.map((c) => c.where),
    [f],
  );
  assert.ok(quick.corrupt.length <= full.corrupt.length);
});
