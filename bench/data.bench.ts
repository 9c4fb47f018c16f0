// Data loading throughput: decode + flip + mask of 112x112 JPEGs from an InsightFace .rec, mfr
// against PIL (Debian python3-pil) doing decode + flip on the same machine, in the same run,
// repeated and summarised by medians.
//
//   npm run bench data            (MFR_BENCH_IMAGES=N, MFR_BENCH_REPEATS=R to change the size)
//
// Rows:
//   PIL decode+flip                one Python process (= one core), u8 HWC arrays
//   PIL decode+flip+normalise      + float32 CHW in [-1, 1] with numpy (mfr's f32 output)
//   mfr kernel u8 / f32            the workers' per-image function (decodeItem: read the record,
//                                  libjpeg-turbo decode with the default jpegMode, fast-idct, mask
//                                  at p = 0.35, flip at p = 0.5, NCHW layout) on one thread:
//                                  per-core rate
//   mfr kernel u8 nhwc zero-copy   the same with libjpeg-turbo decoding straight into the batch row
//                                  (mask and flip in place): mfr's fastest output
//   ..., jpegMode accurate / fast  the same with the accurate IDCT (PIL's pixels), or with the fast
//                                  IDCT and fast chroma upsampling
//   mfr kernel, sharp decode       the same with sharp for decoding (why the fast path exists)
//   mfr loader, W workers          the real DataLoader (worker threads, batches of 128, f32 or
//                                  u8 NCHW): images/s delivered to the consumer, wall clock
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  DataLoader,
  FileCache,
  ImageDecoder,
  MaskBank,
  RecDataset,
  Rng,
  synthesizeDataset,
  type DecoderChoice,
  type JpegMode,
} from "../src/data/index.ts";
import { sampleElements } from "../src/data/decode.ts";
import { decodeItem } from "../src/data/decode-item.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.MFR_BENCH_IMAGES ?? 1000);
const R = Number(process.env.MFR_BENCH_REPEATS ?? 9);
const python = "/usr/bin/python3";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * The PIL reference as one long-lived Python process (pil_decode.py --serve), started before any
 * big buffer exists: a process spawned per pass forks this one each time, and the copy-on-write
 * faults after every fork fell on mfr's next measurement (4x slower loader rows), not on PIL's.
 */
function startPil(dir: string): {
  run: (normalise: boolean, fromFile?: boolean) => Promise<{ rate: number; cpuRate: number }>;
  close: () => void;
} {
  const child = spawn(python, [path.join(here, "pil_decode.py"), dir, "--serve"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async run(normalise, fromFile = false) {
      child.stdin.write(`decode${normalise ? " --normalise" : ""}${fromFile ? " --from-file" : ""}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error(`PIL reference failed (${python} with python3-pil and numpy?): ${stderr}`);
      const o = JSON.parse(value as string) as { images: number; seconds: number; cpu: number };
      return { rate: o.images / o.seconds, cpuRate: o.images / o.cpu };
    },
    close: () => child.stdin.end(),
  };
}

/** The decode workers' per-image function (decodeItem), run on this thread over the dataset. */
async function kernel(
  ds: RecDataset,
  bank: MaskBank,
  dtype: "u8" | "f32",
  decoder: DecoderChoice,
  limit = ds.length,
  layout: "nchw" | "nhwc" = "nchw",
  jpegMode: JpegMode = "fast-idct",
): Promise<{ rate: number; cpuRate: number }> {
  const spec = { size: 112, dtype, layout } as const;
  const buffer = new ArrayBuffer(sampleElements(spec) * (dtype === "f32" ? 4 : 1));
  const ctx = { spec, decoder: new ImageDecoder(112, decoder, jpegMode), bank, files: new FileCache() };
  const rng = new Rng(1);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < limit; i++) {
    const mask = rng.chance(0.35) ? rng.u32() >>> 1 : -1;
    const r = decodeItem(ctx, { slot: 0, loc: ds.locate(i), flip: rng.chance(0.5), mask }, buffer);
    if (typeof r !== "number") await r;
  }
  const c = process.cpuUsage(c0);
  ctx.files.close();
  return { rate: limit / ((performance.now() - t0) / 1000), cpuRate: limit / ((c.user + c.system) / 1e6) };
}

async function loaderRate(L: DataLoader, epoch: number): Promise<{ rate: number; cpuRate: number }> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let n = 0;
  for await (const b of L.epoch(epoch)) n += b.labels.length;
  const c = process.cpuUsage(c0);
  return { rate: n / ((performance.now() - t0) / 1000), cpuRate: n / ((c.user + c.system) / 1e6) };
}

const dir = mkdtempSync(path.join(tmpdir(), "mfr-bench-data-"));
try {
  const ids = Math.max(1, Math.round(N / 10));
  await synthesizeDataset({
    out: dir,
    identities: ids,
    imagesPerIdentity: Math.ceil(N / ids),
    seed: 1,
    format: "rec",
  });
  const ds = new RecDataset(dir);
  const bank = await MaskBank.create({ seed: 0 });
  const pil = startPil(dir);
  const configs = [
    { workers: 1, dtype: "f32" },
    { workers: 2, dtype: "f32" },
    { workers: 1, dtype: "u8", layout: "nhwc" },
    { workers: 2, dtype: "u8", layout: "nhwc" },
  ] as const;
  const loaders = await Promise.all(
    configs.map((c) => DataLoader.open(dir, { batchSize: 128, seed: 0, tail: "pad", ...c })),
  );
  const rows = new Map<string, { rate: number[]; cpuRate: number[] }>();
  const add = (name: string, r: { rate: number; cpuRate: number }): void => {
    const row = rows.get(name) ?? { rate: [], cpuRate: [] };
    row.rate.push(r.rate);
    row.cpuRate.push(r.cpuRate);
    rows.set(name, row);
  };
  // Warm-up: JIT (every kernel variant: each is its own code path, and a training run decodes
  // millions of images after its first second), and the loaders' batch buffers (first-touching
  // fresh memory is slow on this kind of VM; a training run pays it once, in its first batches).
  // PIL gets its warm-up passes too.
  for (let w = 0; w < 3; w++) {
    await pil.run(false);
    await pil.run(true);
    await pil.run(false, true);
    await kernel(ds, bank, "u8", "auto");
    await kernel(ds, bank, "u8", "auto", ds.length, "nhwc");
    await kernel(ds, bank, "u8", "auto", ds.length, "nhwc", "accurate");
    await kernel(ds, bank, "u8", "auto", ds.length, "nhwc", "fast");
    await kernel(ds, bank, "f32", "auto");
  }
  for (const L of loaders) for (let e = 0; e < 3; e++) await loaderRate(L, 99 - e);
  for (let rep = 0; rep < R; rep++) {
    add("PIL decode+flip (1 process)", await pil.run(false));
    add("PIL decode+flip+normalise (1 process)", await pil.run(true));
    add("PIL read .rec+decode+flip (as MXFaceDataset)", await pil.run(false, true));
    add("mfr kernel u8 (1 thread)", await kernel(ds, bank, "u8", "auto"));
    add("mfr kernel u8 nhwc zero-copy (1 thread)", await kernel(ds, bank, "u8", "auto", ds.length, "nhwc"));
    add(
      "mfr kernel u8 nhwc, jpegMode accurate (1 thread)",
      await kernel(ds, bank, "u8", "auto", ds.length, "nhwc", "accurate"),
    );
    add(
      "mfr kernel u8 nhwc, jpegMode fast (1 thread)",
      await kernel(ds, bank, "u8", "auto", ds.length, "nhwc", "fast"),
    );
    add("mfr kernel f32 (1 thread)", await kernel(ds, bank, "f32", "auto"));
    add(
      "mfr kernel f32, sharp decode (1 thread)",
      await kernel(ds, bank, "f32", "sharp", Math.min(ds.length, 200)),
    );
    for (const [i, c] of configs.entries())
      add(
        `mfr loader ${c.dtype} ${"layout" in c ? c.layout : "nchw"}, ${c.workers} worker${c.workers > 1 ? "s" : ""}`,
        await loaderRate(loaders[i]!, rep),
      );
  }
  pil.close();
  await Promise.all(loaders.map((l) => l.close()));
  ds.close();
  // Ratios are paired: each repeat's mfr figure over the PIL figure measured just before it, then
  // the median over repeats. On a shared machine the load moves both within seconds; pairing
  // cancels much of that, where a ratio of two separate medians does not.
  const plain = rows.get("PIL decode+flip (1 process)")!;
  const normalised = rows.get("PIL decode+flip+normalise (1 process)")!;
  console.log(`${ds.length} JPEGs of 112x112 from a .rec, ${R} repeats, medians; masks on 35% (mfr rows)`);
  console.log(
    `${"".padEnd(50)} ${"images/s".padStart(9)} ${"per CPU-s".padStart(10)} ${"vs PIL".padStart(7)} ${"(range)".padStart(11)} ${"same output".padStart(11)}`,
  );
  const summary: Record<
    string,
    {
      imagesPerSecond: number;
      imagesPerCpuSecond: number;
      vsPil: number;
      vsPilSameOutput: number;
      vsPilReadingRec?: number;
    }
  > = {};
  for (const [name, r] of rows) {
    const rate = median(r.rate);
    const cpu = median(r.cpuRate);
    const loader = name.includes("loader");
    const ratios = (ref: { rate: number[]; cpuRate: number[] }): number[] =>
      r.rate.map((_, i) => (loader ? r.rate[i]! / ref.rate[i]! : r.cpuRate[i]! / ref.cpuRate[i]!));
    const vs = ratios(plain);
    // f32 rows against PIL producing the same f32 CHW arrays; u8 rows against its u8 HWC arrays
    const same = median(ratios(name.includes("f32") || name.includes("normalise") ? normalised : plain));
    const range = `${Math.min(...vs).toFixed(2)}-${Math.max(...vs).toFixed(2)}`;
    summary[name] = {
      imagesPerSecond: rate,
      imagesPerCpuSecond: cpu,
      vsPil: median(vs),
      vsPilSameOutput: same,
    };
    console.log(
      `${name.padEnd(50)} ${rate.toFixed(0).padStart(9)} ${cpu.toFixed(0).padStart(10)} ${median(vs).toFixed(2).padStart(6)}x ${range.padStart(11)} ${same.toFixed(2).padStart(10)}x`,
    );
  }
  const [l1] = loadavg();
  console.log(
    "vs PIL: per CPU-second for single-thread rows, wall-clock images/s for loader rows; median of\n" +
      "the repeats' paired ratios (range: lowest-highest)",
  );
  console.log("same output: f32 rows against PIL decode+flip+normalise, u8 rows against PIL decode+flip");
  // The PIL rows above decode payloads extracted beforehand; mfr's kernels read each record from
  // the .rec as they go. Against PIL doing that too (as arcface_torch's MXFaceDataset does):
  const fromRec = rows.get("PIL read .rec+decode+flip (as MXFaceDataset)")!;
  for (const [name, r] of rows) {
    if (!name.startsWith("mfr kernel u8")) continue;
    const vs = r.cpuRate.map((c, i) => c / fromRec.cpuRate[i]!);
    console.log(
      `${name} vs PIL reading the .rec: ${median(vs).toFixed(2)}x (${Math.min(...vs).toFixed(2)}-${Math.max(...vs).toFixed(2)}) per CPU-s`,
    );
    summary[name]!.vsPilReadingRec = median(vs);
  }
  console.log(`load average at the end: ${l1!.toFixed(1)} on ${availableParallelism()} CPUs`);
  mkdirSync(path.join(here, "out"), { recursive: true });
  writeFileSync(
    path.join(here, "out", "data.json"),
    JSON.stringify({ images: ds.length, repeats: R, loadAverage: l1, summary }, null, 1),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
