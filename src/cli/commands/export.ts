// `mfr export`: a checkpoint to ONNX, verified in onnxruntime-node against mfr's own forward, and
// optionally checked against the MFR challenge's submission rules. `--model X.onnx --check-mfr`
// checks an existing ONNX file (from mfr or anyone else) without exporting.
import type { Command } from "commander";
import {
  type CaseResult,
  DEFAULT_OPSET,
  DEFAULT_TOLERANCE,
  OPSET_RANGE,
  type RuleResult,
  checkOnnxFile,
  exportCheckpoint,
  parseBatch,
  rulesFailure,
} from "../../export/index.ts";
import { backboneHint } from "./embed.ts";
import { integer, numberAbove } from "../flags.ts";

interface ExportFlags {
  model: string;
  out?: string;
  foldBn?: boolean;
  opset: string;
  batch: string;
  checkMfr?: boolean;
  verify: boolean;
  verifyData?: string;
  backbone?: string;
  width?: number;
  features?: number;
  threads?: number;
  json?: boolean;
  externalData?: boolean;
}

const mark = (ok: boolean): string => (ok ? "ok  " : "FAIL");

function ruleLines(rules: readonly RuleResult[]): string[] {
  const w = Math.max(...rules.map((r) => r.rule.length));
  return rules.map((r) => `  ${mark(r.ok)} ${r.rule.padEnd(w)}  ${r.description}: ${r.detail}`);
}

function caseLines(cases: readonly CaseResult[]): string[] {
  const w = Math.max(...cases.map((c) => c.name.length));
  return cases.map(
    (c) =>
      `  ${mark(c.ok)} ${c.name.padEnd(w)}  batch ${String(c.batch).padStart(3)}  max|d| ${c.maxAbsDiff.toExponential(2)}` +
      `${c.scale > 1 ? ` (outputs up to ${c.scale.toPrecision(3)})` : ""}  min cos ${c.minCosine.toFixed(8)}`,
  );
}

export function registerExport(program: Command): void {
  program
    .command("export")
    .description(
      "export a backbone checkpoint to ONNX, verify it in onnxruntime-node, check submission rules",
    )
    .requiredOption("--model <file>", "checkpoint (.safetensors/.pth); or an .onnx file to --check-mfr only")
    .option("--out <file>", "ONNX file to write")
    .option("--fold-bn", "fold BatchNorm into the neighbouring convolutions / FC first")
    .option("--opset <n>", `ONNX opset (${OPSET_RANGE[0]}..${OPSET_RANGE[1]})`, String(DEFAULT_OPSET))
    .option("--batch <b>", "'dynamic' or a fixed batch size", "dynamic")
    .option(
      "--check-mfr",
      "check the challenge's rules: 3x112x112 input, one output, fp32 weights, >= 8 nodes",
    )
    .option("--no-verify", "skip the onnxruntime-node comparison with mfr's forward")
    .option(
      "--external-data",
      "write the weights to <out>.data beside the model (ONNX external data; automatic past protobuf's 2 GiB)",
    )
    .option(
      "--verify-data <path>",
      "dataset or image folder for the real-face check (default: synthetic faces)",
    )
    .option("--backbone <name>", "backbone preset, when the checkpoint does not say (arcface_torch .pth)")
    .option("--width <w>", "channel multiplier, when the checkpoint does not say", numberAbove("--width", 0))
    .option("--features <n>", "embedding size, when the checkpoint does not say", integer("--features", 1))
    .option("--threads <n>", "onnxruntime threads for verification", integer("--threads", 1))
    .option("--json", "print the report as one JSON object")
    .action(async (f: ExportFlags) => {
      if (/\.onnx$/i.test(f.model)) {
        if (!f.checkMfr)
          throw new Error(
            `${f.model} is already ONNX: give a checkpoint to export, or --check-mfr to check it`,
          );
        const rules = checkOnnxFile(f.model);
        if (f.json) console.log(JSON.stringify({ model: f.model, rules }, null, 2));
        else console.log([`check-mfr ${f.model}:`, ...ruleLines(rules)].join("\n"));
        const failure = rulesFailure(rules, f.model);
        if (failure !== undefined) throw new Error(failure);
        return;
      }
      if (f.out === undefined) throw new Error("export needs --out <file.onnx>");
      const r = await exportCheckpoint({
        checkpoint: f.model,
        out: f.out,
        hint: backboneHint(f),
        foldBatchNorm: !!f.foldBn,
        opset: Number(f.opset),
        batch: parseBatch(f.batch),
        verify: f.verify,
        verifyData: f.verifyData,
        checkMfr: !!f.checkMfr,
        threads: f.threads,
        ...(f.externalData ? { externalData: true } : {}),
      });
      if (f.json) console.log(JSON.stringify(r, null, 2));
      else {
        const d = r.descriptor;
        const ops = Object.entries(r.info.ops)
          .map(([k, n]) => `${k} ${n}`)
          .join(", ");
        const lines = [
          `model   ${d.backbone}, width ${d.width}, ${d.numFeatures}-d embeddings (${f.model})`,
          `bn      ${f.foldBn ? `folded: ${r.batchNorms.before} -> ${r.batchNorms.after} BatchNorm layers` : `${r.batchNorms.before} BatchNorm layers kept (--fold-bn folds them)`}`,
          `onnx    ${r.out}: ${(r.bytes / 2 ** 20).toFixed(2)} MiB, opset ${r.info.opset}, IR ${r.info.irVersion}, ` +
            `${r.info.nodes} nodes (${ops}), output [${r.info.outputShape.join(", ")}]`,
        ];
        if (r.externalData)
          lines.push(
            `data    ${r.externalData.file}: ${(r.externalData.bytes / 2 ** 20).toFixed(2)} MiB of weights (external data: keep it beside the model)`,
          );
        if (r.verification) {
          const t = DEFAULT_TOLERANCE;
          lines.push(
            `verify  onnxruntime-node vs mfr eval forward (max|d| <= ${t.maxAbsDiff} x scale, cos >= ${t.minCosine}):`,
          );
          lines.push(...caseLines(r.verification));
        }
        if (r.rules) lines.push("check-mfr:", ...ruleLines(r.rules));
        console.log(lines.join("\n"));
      }
      const bad = r.verification?.filter((c) => !c.ok) ?? [];
      if (bad.length > 0)
        throw new Error(
          `${r.out}: onnxruntime-node's embeddings differ from mfr's on ${bad.map((c) => `'${c.name}' (batch ${c.batch})`).join(", ")}; the file is kept for inspection`,
        );
      const failure = r.rules ? rulesFailure(r.rules, r.out) : undefined;
      if (failure !== undefined) throw new Error(failure);
    });
}
