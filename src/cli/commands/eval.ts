// `mfr eval`: exact TPR@FPR over all pairs of an embedded test set, by mask group; or, with --bin,
// arcface_torch's 10-fold accuracy on .bin verification sets (LFW, CFP-FP, AgeDB).
import type { Command } from "commander";
import path from "node:path";
import { ProcessGroup, placementFromEnv } from "../../distributed/index.ts";
import * as T from "../../torch/index.ts";
import {
  DEFAULT_FPRS,
  embedDataset,
  openEmbedder,
  type GemmKind,
  type PairEvalInput,
  evaluatePairs,
  evaluationJson,
  loadPairInput,
  loadVerificationSet,
  parseFprList,
  processGroupCollectives,
  verifySet,
  writeReport,
} from "../../eval/index.ts";
import { integer } from "../flags.ts";
import { isRunDir, writeRunReport } from "../../report/index.ts";

/** `--bin` sets with `--model`: one line per set, or one JSON object keyed by file. */
async function evalBins(files: readonly string[], model: string, json: boolean): Promise<void> {
  const embedder = await openEmbedder(model);
  try {
    const out: Record<string, { pairs: number; accuracy: number; std: number; xnorm: number }> = {};
    for (const file of files) {
      const v = await verifySet(loadVerificationSet(file), (x, n) => embedder.embed(x, n), {
        batchSize: embedder.fixedBatch ?? 64,
      });
      out[file] = { pairs: v.pairs, accuracy: v.accuracy, std: v.std, xnorm: v.xnorm };
      if (!json)
        console.log(
          `${file}: ${v.pairs} pairs, accuracy ${(100 * v.accuracy).toFixed(2)}% ± ${(100 * v.std).toFixed(2)}% ` +
            `(10 folds, flip-sum), XNorm ${v.xnorm.toFixed(3)}`,
        );
    }
    if (json) console.log(JSON.stringify({ sets: out }));
  } finally {
    await embedder.close();
  }
}

/** `--model` over `--data` (what `mfr embed` writes), with --groups read from its file. */
async function embeddedInput(model: string, data: string, flags: EvalFlags): Promise<PairEvalInput> {
  const embedder = await openEmbedder(model);
  try {
    const e = await embedDataset(embedder, data, { flip: !!flags.flip });
    if (!e.labelled) throw new Error(`${data}: images without identities have no pairs to evaluate`);
    if (e.count === 0) throw new Error(`${data}: no images to embed, nothing to evaluate`);
    const groups = flags.groups === undefined ? undefined : T.scope(() => T.loadNpy(flags.groups!).toArray());
    const embeddings = T.tensor(e.embeddings, { shape: [e.count, e.dim] });
    return { embeddings, labels: e.labels, ...(groups ? { groups } : {}) };
  } finally {
    await embedder.close();
  }
}

interface EvalFlags {
  bin: string[];
  embeddings?: string;
  labels?: string;
  groups?: string;
  model?: string;
  data?: string;
  flip?: boolean;
  fpr: string;
  json?: boolean;
  report?: string;
  blockSize: number;
  gemm: string;
}

export function registerEval(program: Command): void {
  program
    .command("eval")
    .description("TPR at FPR over every pair (all, masked-unmasked, masked-masked, unmasked-unmasked)")
    .option("--embeddings <file>", "embeddings .npy, float32/float16 [N, D]")
    .option("--labels <file>", "identity labels .npy, int [N]")
    .option("--groups <file>", "mask groups .npy, uint8 [N]: 0 unmasked, 1 masked")
    .option("--model <file>", "checkpoint or .onnx to embed --data with (as mfr embed does)")
    .option("--data <dir>", "dataset to embed with --model")
    .option(
      "--bin <file>",
      "a .bin verification set (lfw, cfp_fp, agedb_30): arcface_torch's 10-fold accuracy of --model (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option("--flip", "flip-sum test-time augmentation when embedding (with --model)")
    .option("--fpr <list>", "target FPRs, comma-separated", DEFAULT_FPRS.join(","))
    .option("--json", "print exactly one JSON object and nothing else")
    .option("--report <dir>", "write result.json, ROC/DET curves (SVG, PNG) and report.html here")
    .option("--block-size <n>", "rows per tile of the block GEMM", integer("--block-size", 1), 2048)
    .option("--gemm <kind>", "onednn (CPU inner-product kernel) or mm (aten::mm)", "onednn")
    .action(async (flags: EvalFlags) => {
      if (flags.bin.length > 0) {
        if (flags.model === undefined) throw new Error("eval --bin needs --model (a checkpoint or .onnx)");
        const other = ["embeddings", "labels", "groups", "data", "report"].filter(
          (k) => flags[k as keyof EvalFlags] !== undefined,
        );
        if (other.length > 0)
          throw new Error(`eval --bin takes --model only, not ${other.map((k) => `--${k}`).join(", ")}`);
        await evalBins(flags.bin, flags.model, !!flags.json);
        return;
      }
      const embedding = flags.model !== undefined || flags.data !== undefined;
      if (embedding && (flags.model === undefined || flags.data === undefined))
        throw new Error("eval --model and --data go together");
      if (!embedding && (flags.embeddings === undefined || flags.labels === undefined))
        throw new Error(
          "eval needs --embeddings and --labels (and optionally --groups), or --model and --data",
        );
      if (flags.gemm !== "onednn" && flags.gemm !== "mm") throw new Error(`--gemm must be onednn or mm`);
      const fpr = parseFprList(flags.fpr);
      const input = embedding
        ? await embeddedInput(flags.model!, flags.data!, flags)
        : loadPairInput({ embeddings: flags.embeddings!, labels: flags.labels!, groups: flags.groups });
      // Under `mfr launch` (or Slurm/Open MPI) the block grid is split over the ranks; every rank
      // ends with the same numbers and rank 0 prints them.
      const placement = placementFromEnv();
      const group = placement.worldSize > 1 ? ProcessGroup.init(placement) : undefined;
      const lead = (group?.rank ?? 0) === 0;
      const t0 = performance.now();
      const tty = process.stderr.isTTY && !flags.json && lead;
      const ev = await evaluatePairs(input, {
        fpr,
        blockSize: flags.blockSize,
        gemm: flags.gemm as GemmKind,
        collectives: group && processGroupCollectives(group),
        onProgress: tty
          ? (p) => process.stderr.write(`\r${p.pass} ${p.done}/${p.total} blocks`.padEnd(40))
          : undefined,
      });
      if (group) {
        await group.barrier().waitAsync();
        group.destroy();
      }
      if (tty) process.stderr.write("\r".padEnd(41) + "\r");
      if (!lead) return;
      const seconds = (performance.now() - t0) / 1000;
      if (flags.report !== undefined)
        await writeReport(flags.report, ev, {
          notes: [
            `embeddings ${flags.embeddings}, labels ${flags.labels}${flags.groups ? `, groups ${flags.groups}` : ""}`,
            `${ev.info.blocks} blocks of ${ev.info.blockSize} rows, passes: ${ev.info.passes.join(", ")}, ${seconds.toFixed(1)} s`,
          ],
        });
      // An evaluation saved inside a run folder (--report RUN_DIR/eval) joins the run's report.
      const run = flags.report === undefined ? undefined : path.dirname(path.resolve(flags.report));
      const runReport = run !== undefined && isRunDir(run) ? await writeRunReport(run) : undefined;
      if (flags.json) {
        console.log(evaluationJson(ev));
        return;
      }
      console.log(
        `pairs: ${ev.pairs.genuine} genuine, ${ev.pairs.impostor} impostor (${seconds.toFixed(1)} s)`,
      );
      const keys = ev.info.fprKeys;
      console.log(
        [
          "subset".padEnd(18),
          "genuine".padStart(12),
          "impostor".padStart(14),
          ...keys.map((k) => `TPR@${k} (τ)`.padStart(20)),
        ].join(" "),
      );
      for (const [name, s] of Object.entries(ev.subsets)) {
        const cells = keys.map((k) => {
          const t = s.tpr[k];
          const tau = s.threshold[k];
          return (t === null || t === undefined ? "–" : `${t.toFixed(5)} (${tau?.toFixed(4)})`).padStart(20);
        });
        console.log(
          [name.padEnd(18), String(s.genuine).padStart(12), String(s.impostor).padStart(14), ...cells].join(
            " ",
          ),
        );
      }
      if (flags.report !== undefined) console.log(`report: ${flags.report}/report.html`);
      if (runReport !== undefined) console.log(`run report: ${runReport}`);
    });
}
