// Bad datasets and options fail at open, with an error naming the file or config key, and leave
// nothing running: the CLI exits by itself (live decode workers used to hang it forever).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { RecDataset } from "../../src/data/rec-dataset.ts";
import { DataLoader } from "../../src/data/loader.ts";
import { Rng } from "../../src/data/rng.ts";
import { TrainConfigSchema } from "../../src/train/config.ts";
import { tinyRec } from "./helpers.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Run {
  code: number | null;
  /** true when the process had to be killed: it did not exit by itself. */
  hung: boolean;
  stderr: string;
}

/** Runs a command as a user does, killed after `limitMs` if it has not exited by then. */
function run(args: string[], limitMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill("SIGKILL");
    }, limitMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, hung, stderr });
    });
  });
}

const train = (data: string, ...sets: string[]): Promise<Run> =>
  run([
    "bin/mfr.js",
    "train",
    "configs/demo.ts",
    "--set",
    `data.path=${data}`,
    "--set",
    `runDir=${data}.run`,
    ...sets.flatMap((s) => ["--set", s]),
  ]);

interface SchemaNode {
  shape?: Record<string, unknown>;
  unwrap?: () => SchemaNode;
}

/** The dotted config keys a message names ("data.batchSize"), each checked against the schema. */
function assertKeysExist(message: string): void {
  const keys = [...message.matchAll(/\b(data|model|head|optim|dist|train)\.([A-Za-z]+)\b/g)];
  assert.ok(keys.length > 0, `no config key named in: ${message}`);
  for (const [, group, key] of keys) {
    // A section with defaults is wrapped (prefault/optional): its keys are one unwrap further.
    let section = TrainConfigSchema.shape[group as "data"] as unknown as SchemaNode;
    while (!section.shape && section.unwrap) section = section.unwrap();
    const shape = section.shape!;
    assert.ok(key! in shape, `${group}.${key} (named in "${message}") is not a config key`);
  }
}

test("mfr train with a batch larger than the dataset exits non-zero by itself, naming data.batchSize", async () => {
  const dir = await tinyRec(4, 3);
  const r = await train(dir, "data.batchSize=100000");
  assert.equal(r.hung, false, "the process did not exit by itself");
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /12 samples make no full batch of 100000 x 1 ranks; set data\.batchSize to at most 12/,
  );
  assertKeysExist(r.stderr.slice(r.stderr.indexOf("sampler:")));
});

test("mfr train on a .rec whose .idx is empty exits non-zero by itself, naming the .idx", async () => {
  const dir = await tinyRec(4, 3);
  writeFileSync(path.join(dir, "train.idx"), "");
  const r = await train(dir);
  assert.equal(r.hung, false, "the process did not exit by itself");
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.stderr.includes(`${path.join(dir, "train.idx")}: lists no records`), r.stderr);
});

test("a decode pool whose workers fail to start leaves no thread behind (the process exits)", async () => {
  // jpegMode is checked by DataLoader.open; handed to the pool directly, the workers' init fails.
  const script = `
    import { DecodePool } from "./src/data/pool.ts";
    const spec = { size: 112, dtype: "u8", layout: "nhwc" };
    const init = { type: "init", spec, decoder: "auto", jpegMode: "bogus", maskVariants: 0, maskBankSeed: 0 };
    await DecodePool.start(3, init).then(
      () => console.error("started"),
      (e) => { console.error("refused: " + e.message); process.exitCode = 3; },
    );`;
  const r = await run(["--import", "tsx", "--input-type=module", "-e", script], 30_000);
  assert.equal(r.hung, false, "worker threads kept the process alive");
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /refused: decode worker: data\.jpegMode must be one of/);
});

test("too many bad samples stop the loader with an error naming a real config key", async () => {
  const dir = await tinyRec(5, 4);
  const rec = path.join(dir, "train.rec");
  const offsets = readFileSync(path.join(dir, "train.idx"), "utf8")
    .trim()
    .split("\n")
    .map((l) => Number(l.split("\t")[1]));
  const buf = readFileSync(rec);
  for (const k of [3, 11]) buf.writeUInt32LE(0x12345678, offsets[k]!); // bad magic
  writeFileSync(rec, buf);
  const L = await DataLoader.open(dir, { batchSize: 4, workers: 1, maskProb: 0, maxBadFraction: 0.05 });
  try {
    const err = await (async () => {
      for await (const _ of L.epoch(0));
    })().then(
      () => assert.fail("the epoch ran despite 2 of 20 bad samples"),
      (e: Error) => e,
    );
    assert.match(err.message, /2 of 20 samples are bad, more than data\.maxBadFraction = 0\.05/);
    assertKeysExist(err.message.replace(/^[^:]*train\.rec[^:]*:/, "").split("; last:")[0]!);
  } finally {
    await L.close();
  }
});

test("an empty .idx beside a non-empty .rec fails at open, naming the .idx", async () => {
  const dir = await tinyRec(2, 2);
  const idx = path.join(dir, "train.idx");
  writeFileSync(idx, "");
  assert.throws(
    () => new RecDataset(dir),
    (e: Error) => e.message.startsWith(`${idx}: lists no records but `) && e.message.includes("train.rec"),
  );
  await assert.rejects(DataLoader.open(dir, { batchSize: 1 }), /lists no records/);
});

test("record 0 with a NaN (or impossible) identity range fails at open, naming the file and record 0", async () => {
  const dir = await tinyRec(2, 2);
  const rec = path.join(dir, "train.rec");
  const good = readFileSync(rec);
  // Record 0 sits at byte 0: 8 bytes RecordIO header, 24 bytes IRHeader, then its two float labels.
  for (const [a, b] of [
    [NaN, NaN],
    [5, NaN],
    [0, 3],
    [5, 4],
    [5, 1e9],
  ]) {
    const buf = Buffer.from(good);
    buf.writeFloatLE(a!, 32);
    buf.writeFloatLE(b!, 36);
    writeFileSync(rec, buf);
    assert.throws(
      () => new RecDataset(dir),
      (e: Error) =>
        e.message.startsWith(`${rec} record 0: header label [`) &&
        /key range of this 7-record file/.test(e.message),
      `[${a}, ${b}]`,
    );
  }
});

test("random bytes in a .rec are reported as not a RecordIO file, not as a truncation", async () => {
  const dir = await tinyRec(2, 2);
  const rec = path.join(dir, "train.rec");
  const size = readFileSync(rec).length;
  const rng = new Rng(5);
  const junk = Buffer.from(Uint8Array.from({ length: size }, () => rng.u32() & 0xff));
  writeFileSync(rec, junk);
  const magic = junk.readUInt32LE(0).toString(16).padStart(8, "0");
  const expect = `${rec}: not a RecordIO file: bad magic 0x${magic} at byte 0 (expected 0xced7230a)`;
  assert.throws(
    () => new RecDataset(dir),
    (e: Error) => e.message === expect && !/truncated/.test(e.message),
  );
  // Without an index (the .rec is scanned) the same.
  unlinkSync(path.join(dir, "train.idx"));
  assert.throws(() => new RecDataset(dir), { message: expect });
});

test("a valid first record followed by junk names the record and offset where the magic is missing", async () => {
  const dir = await tinyRec(2, 2);
  const rec = path.join(dir, "train.rec");
  const idx = readFileSync(path.join(dir, "train.idx"), "utf8").trim().split("\n");
  const [lastKey, lastOff] = idx.at(-1)!.split("\t").map(Number);
  const buf = readFileSync(rec);
  buf.writeUInt32LE(0x01020304, lastOff!);
  writeFileSync(rec, buf);
  assert.throws(
    () => new RecDataset(dir),
    (e: Error) =>
      e.message ===
      `${rec} record ${lastKey}: last record: bad magic 0x01020304 at byte ${lastOff} (expected 0xced7230a): ` +
        "no record starts there",
  );
});

test("identity counts only metadata vouches for are refused before the head allocates them", async () => {
  const dir = await tinyRec(2, 2);
  // Without record 0's header the identity count comes from `property` alone.
  const prop = path.join(dir, "property");
  writeFileSync(prop, "100000000,112,112\n");
  const rec = path.join(dir, "train.rec");
  const buf = readFileSync(rec);
  buf.writeUInt32LE(0, 8); // record 0's flag -> 0: no header, a plain record
  writeFileSync(rec, buf);
  assert.equal(new RecDataset(dir).numClasses, 1e8); // data info still reads it
  const r = await train(dir, "data.batchSize=2");
  assert.equal(r.hung, false, "the process did not exit by itself");
  assert.equal(r.code, 1, r.stderr);
  assert.ok(
    r.stderr.includes(
      `${prop}: declares 100000000 identities but ${dir} holds only 7 images; ` +
        "set head.numClasses to train that many classes anyway",
    ),
    r.stderr,
  );
  assertKeysExist("head.numClasses");

  // A list file: its largest label is the claim.
  const list = path.join(dir, "train.lst");
  writeFileSync(list, "a.jpg 0\nb.jpg 99999999\n"); // never decoded: refused before
  const l = await train(list, "data.batchSize=2");
  assert.equal(l.hung, false);
  assert.equal(l.code, 1, l.stderr);
  assert.ok(
    l.stderr.includes(`${list}: declares 100000000 identities but ${list} holds only 2 images`),
    l.stderr,
  );
});
