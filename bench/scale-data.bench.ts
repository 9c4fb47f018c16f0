// Datasets at WebFace scale, without the images:
//   index    a generated .idx of BENCH_INDEX_N records (260 M: WebFace260M) beside a sparse .rec
//            (real records only at its first and last offsets, holes between): the time and peak
//            memory of opening it as a dataset in a fresh process, and of one rank's epoch order
//            (BENCH_INDEX_RANKS ranks, batch 128, full shuffle).
//   folder   BENCH_FOLDER_N empty files (1 M) in <identity>/<image>.jpg folders of 100: the time
//            and peak memory of listing them as a folder dataset, cold and warm.
// `npm run bench scale-data`; BENCH_INDEX_N=0 or BENCH_FOLDER_N=0 skips a part. Temporary files
// go under BENCH_TMP (the OS's) and are removed at the end.
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { RecDataset } from "../src/data/rec-dataset.ts";
import { openFolderDataset } from "../src/data/folder-dataset.ts";
import { ShardedSampler } from "../src/data/sampler.ts";
import { encodeRecord, packIR } from "../src/data/recordio.ts";

const env = process.env;
const here = fileURLToPath(import.meta.url);
const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;
const peakRss = (): number => process.resourceUsage().maxRSS * 1024;
const seconds = (t0: number): number => (performance.now() - t0) / 1000;

/** Record i's size in bytes on disk: 8-byte header + 4-aligned payload of 2-14 KB. */
const recordBytes = (i: number): number => 8 + 4 * (500 + ((Math.imul(i, 0x9e3779b1) >>> 0) % 3000));

/** Writes n's decimal digits into buf at pos; returns the position after them. */
function digits(buf: Buffer, pos: number, n: number): number {
  let len = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) len++;
  for (let i = pos + len - 1, x = n; i >= pos; i--, x = Math.floor(x / 10)) buf[i] = 0x30 + (x % 10);
  return pos + len;
}

function writeIndexPack(dir: string, n: number): { idxBytes: number; recBytes: number } {
  const idx = openSync(path.join(dir, "train.idx"), "w");
  const buf = Buffer.allocUnsafe(1 << 24);
  let off = 0;
  let idxBytes = 0;
  let lastOff = 0;
  let pos = 0;
  for (let i = 0; i < n; i++) {
    if (pos > buf.length - 64) {
      idxBytes += writeSync(idx, buf, 0, pos);
      pos = 0;
    }
    pos = digits(buf, pos, i);
    buf[pos++] = 0x09;
    pos = digits(buf, pos, off);
    buf[pos++] = 0x0a;
    lastOff = off;
    off += recordBytes(i);
  }
  idxBytes += writeSync(idx, buf, 0, pos);
  closeSync(idx);
  // The .rec: a real image record at the first and last offsets (what opening reads), holes
  // between, ending where the last record ends.
  const rec = openSync(path.join(dir, "train.rec"), "w");
  const record = (key: number): Buffer => {
    const payload = Buffer.alloc(recordBytes(key) - 8 - 24);
    return Buffer.concat(encodeRecord(packIR({ label: 0, id: key, id2: 0 }, payload)));
  };
  writeSync(rec, record(0), 0, undefined, 0);
  writeSync(rec, record(n - 1), 0, undefined, lastOff);
  closeSync(rec);
  return { idxBytes, recBytes: off };
}

/** In a fresh process: open the pack and compute one rank's epoch order. */
const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function openIndex(dir: string, ranks: number): void {
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const ds = new RecDataset(dir);
  const open = seconds(t0);
  const openCpu = cpuSeconds() - c0;
  const rssOpen = peakRss();
  const t1 = performance.now();
  const order = new ShardedSampler({
    length: ds.length,
    batchSize: 128,
    worldSize: ranks,
    rank: 0,
    seed: 1,
  }).epochIndices(3);
  const sample = seconds(t1);
  const sampleCpu = cpuSeconds() - c0 - openCpu;
  const last = ds.locate(ds.length - 1);
  const check = last.kind === "rec" ? last.offset : -1;
  console.log(
    JSON.stringify({
      records: ds.length,
      openSeconds: open,
      openCpuSeconds: openCpu,
      indexBytes: ds.reader.index.bytes,
      peakRssAfterOpen: rssOpen,
      epochOrderSeconds: sample,
      epochOrderCpuSeconds: sampleCpu,
      epochOrderLength: order.length,
      peakRss: peakRss(),
      lastOffset: check,
    }),
  );
  ds.close();
}

function writeFolders(root: string, n: number): void {
  const per = 100;
  for (let d = 0; d * per < n; d++) {
    const dir = path.join(root, `id${String(d).padStart(6, "0")}`);
    mkdirSync(dir);
    for (let i = 0; i < per && d * per + i < n; i++) closeSync(openSync(path.join(dir, `${i}.jpg`), "w"));
  }
}

function listFolders(root: string): void {
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const ds = openFolderDataset(root);
  console.log(
    JSON.stringify({
      images: ds.length,
      identities: ds.numClasses,
      seconds: seconds(t0),
      cpuSeconds: cpuSeconds() - c0,
      peakRss: peakRss(),
    }),
  );
}

function child(...args: string[]): Record<string, number> {
  const r = spawnSync(process.execPath, ["--import", "tsx", here, ...args], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`child ${args.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, number>;
}

/** Drops the page cache's copy of the folders where allowed (root), for a cold listing. */
function dropCaches(): boolean {
  return spawnSync("sh", ["-c", "sync && echo 2 > /proc/sys/vm/drop_caches"]).status === 0;
}

const [mode, arg, arg2] = process.argv.slice(2);
if (mode === "--open-index") openIndex(arg!, Number(arg2));
else if (mode === "--list-folder") listFolders(arg!);
else {
  const tmp = mkdtempSync(path.join(env.BENCH_TMP ?? tmpdir(), "mfr-scale-data-"));
  try {
    const n = Number(env.BENCH_INDEX_N ?? 260_000_000);
    const ranks = Number(env.BENCH_INDEX_RANKS ?? 8);
    if (n > 0) {
      const t0 = performance.now();
      const sizes = writeIndexPack(tmp, n);
      console.log(
        `index: generated ${n} records (${gib(sizes.idxBytes)} of .idx, a sparse ${(sizes.recBytes / 1e12).toFixed(2)} TB .rec) in ${seconds(t0).toFixed(0)} s`,
      );
      const r = child("--open-index", tmp, String(ranks));
      console.log(
        `  open as a dataset: ${r.openSeconds!.toFixed(1)} s (CPU ${r.openCpuSeconds!.toFixed(1)} s), index ${gib(r.indexBytes!)} (${(r.indexBytes! / n).toFixed(2)} B/record), ` +
          `peak RSS ${gib(r.peakRssAfterOpen!)}`,
      );
      console.log(
        `  rank 0 of ${ranks}: epoch order of ${r.epochOrderLength} samples in ${r.epochOrderSeconds!.toFixed(1)} s (CPU ${r.epochOrderCpuSeconds!.toFixed(1)} s), peak RSS ${gib(r.peakRss!)}`,
      );
      rmSync(path.join(tmp, "train.idx"));
      rmSync(path.join(tmp, "train.rec"));
    }
    const files = Number(env.BENCH_FOLDER_N ?? 1_000_000);
    if (files > 0) {
      const root = path.join(tmp, "folder");
      mkdirSync(root);
      const t0 = performance.now();
      writeFolders(root, files);
      console.log(
        `folder: created ${files} empty files in ${Math.ceil(files / 100)} folders in ${seconds(t0).toFixed(0)} s`,
      );
      const cold = dropCaches();
      const a = child("--list-folder", root);
      const b = child("--list-folder", root);
      console.log(
        `  listing ${a.images} images: ${cold ? "cold cache" : "first"} ${a.seconds!.toFixed(1)} s (CPU ${a.cpuSeconds!.toFixed(1)} s), ` +
          `warm ${b.seconds!.toFixed(1)} s (CPU ${b.cpuSeconds!.toFixed(1)} s), peak RSS ${gib(b.peakRss!)}`,
      );
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
