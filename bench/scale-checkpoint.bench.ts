// A checkpoint whose head shard is over 2 GiB (Node's limit for one read, write or Buffer): one
// rank holding BENCH_CKPT_CLASSES (1 050 000) x 512 class centres in float32 (2.15 GB) saves it,
// the whole checkpoint is verified against its manifest, the head is zeroed, and resuming restores
// it bit for bit. Time, throughput and peak memory of each step. The head's SGD has no momentum
// here so that the run stays within ~2x the shard (momentum would double every figure).
// `npm run bench scale-checkpoint`; BENCH_TMP (the OS's temporary folder). Files are removed.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as T from "../src/torch/index.ts";
import { ProcessGroup } from "../src/distributed/index.ts";
import { PartialFC } from "../src/head/index.ts";
import { SGD } from "../src/optim/index.ts";
import { buildBackbone } from "../src/models/index.ts";
import {
  type TrainState,
  createGradientSync,
  loadCheckpoint,
  saveCheckpoint,
  verifyCheckpoint,
} from "../src/train/index.ts";

const env = process.env;
const classes = Number(env.BENCH_CKPT_CLASSES ?? 1_050_000);
const dim = 512;
const gb = (b: number): string => `${(b / 1e9).toFixed(2)} GB`;
const peak = (): number => process.resourceUsage().maxRSS * 1024;

function timed<R>(what: string, bytes: number, f: () => R): R {
  const t0 = performance.now();
  const r = f();
  const s = (performance.now() - t0) / 1000;
  console.log(
    `  ${what}: ${s.toFixed(1)} s (${(bytes / 1e6 / s).toFixed(0)} MB/s), peak RSS so far ${gb(peak())}`,
  );
  return r;
}

/** sha256 of a tensor's bytes, read in place. */
function digest(t: T.Tensor): string {
  const h = createHash("sha256");
  for (const v of t.byteViews()) h.update(v);
  return h.digest("hex");
}

const group = ProcessGroup.single();
const backbone = buildBackbone("mbf", { width: 0.125, numFeatures: dim });
const sync = createGradientSync(group, [{ params: backbone.parameters() }], (g) => new SGD(g, { lr: 0.1 }), {
  zero: 0,
  overlap: false,
});
const head = new PartialFC(group, {
  numClasses: classes,
  embeddingSize: dim,
  sampleRate: 1,
  margin: { s: 64, m3: 0.4 },
});
const s: TrainState = { backbone, sync, head, headOpt: new SGD([head.weight], { lr: 0.1 }) };
const shardBytes = head.weight.numel * 4;
console.log(
  `head shard ${classes} x ${dim} float32 = ${gb(shardBytes)} (${(shardBytes / 2 ** 30).toFixed(2)} GiB), peak RSS ${gb(peak())}`,
);

const runDir = mkdtempSync(path.join(env.BENCH_TMP ?? tmpdir(), "mfr-scale-ckpt-"));
try {
  const before = digest(head.weight);
  const dir = timed("save (hash while writing, no copy)", shardBytes, () =>
    saveCheckpoint(group, runDir, 1, s),
  );
  const file = path.join(dir, "head-rank0.safetensors");
  console.log(`  ${path.basename(file)}: ${gb(statSync(file).size)}; ${readdirSync(dir).join(", ")}`);
  timed("verify every file against the manifest (streamed)", shardBytes, () => verifyCheckpoint(dir));
  T.noGrad(() => head.weight.zero_());
  timed("resume (read into place, checked in the same pass)", shardBytes, () =>
    loadCheckpoint(group, dir, s),
  );
  const after = digest(head.weight);
  console.log(
    `  head after resume ${after === before ? "identical to the saved one" : "DIFFERS from the saved one"}`,
  );
  if (after !== before) process.exitCode = 1;
} finally {
  rmSync(runDir, { recursive: true, force: true });
}
