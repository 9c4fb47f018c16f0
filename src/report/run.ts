// What a run folder holds, read for its report: the step records and verification records of
// metrics.jsonl, run.json (the resolved config, versions, machine) when the trainer wrote one, and
// every evaluation saved under it (a subfolder with result.json and curves.json, as
// `mfr eval --report RUN_DIR/eval` writes).
import fs from "node:fs";
import path from "node:path";
import * as T from "../torch/index.ts";
import { CURVES_FILE, type CurveData } from "../eval/index.ts";

/** One logged training step: the trainer's StepMetrics, read back (parts absent where not run). */
export interface StepRecord {
  step: number;
  loss: number;
  lr: number;
  imagesPerSec: number;
  /** With distillation: the margin CE and the distillation term of the loss. */
  ce?: number;
  distill?: number;
  lossScale?: number;
  skipped?: boolean;
}

/** One verification set's figures at one step (metrics.jsonl records of type "verify"). */
export interface VerifyRecord {
  step: number;
  set: string;
  results: Record<string, number>;
}

export interface EvalResult {
  /** The subfolder's name, e.g. "eval". */
  name: string;
  /** result.json: pairs and, by subset, TPR and threshold at each target FPR. */
  result: {
    pairs?: { genuine: number; impostor: number };
    subsets: Record<string, { genuine: number; impostor: number; tpr: Record<string, number | null> }>;
  };
  curves: CurveData;
}

export interface RunData {
  dir: string;
  steps: StepRecord[];
  verify: VerifyRecord[];
  evals: EvalResult[];
  /** run.json as written, when there is one. */
  run?: Record<string, unknown>;
}

export const METRICS_FILE = "metrics.jsonl";
const RUN_FILE = "run.json";

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** Whether dir looks like a run folder (something a report can be made from). */
export function isRunDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, METRICS_FILE)) || fs.existsSync(path.join(dir, RUN_FILE));
}

function readMetrics(file: string): { steps: StepRecord[]; verify: VerifyRecord[] } {
  const steps: StepRecord[] = [];
  const verify: VerifyRecord[] = [];
  if (!fs.existsSync(file)) return { steps, verify };
  const lines = fs.readFileSync(file, "utf8").split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      // A run killed mid-append tears only the last line; anywhere else the file is damaged.
      if (lines.slice(i + 1).some((l) => l.trim() !== ""))
        throw new Error(`${file}:${i + 1}: not valid JSON`);
      return;
    }
    if (!isObject(r) || num(r.step) === undefined)
      throw new Error(`${file}:${i + 1}: a record without a numeric "step"`);
    const step = r.step as number;
    if (r.type === "verify") {
      if (typeof r.set === "string" && isObject(r.results)) {
        const results: Record<string, number> = {};
        for (const [k, v] of Object.entries(r.results)) if (num(v) !== undefined) results[k] = v as number;
        verify.push({ step, set: r.set, results });
      }
      return;
    }
    if (r.type !== undefined) return; // records of kinds this report does not draw
    const [loss, lr, imagesPerSec] = [num(r.loss), num(r.lr), num(r.imagesPerSec)];
    if (loss === undefined || lr === undefined || imagesPerSec === undefined)
      throw new Error(`${file}:${i + 1}: a step record needs numeric loss, lr and imagesPerSec`);
    steps.push({
      step,
      loss,
      lr,
      imagesPerSec,
      ...(num(r.ce) !== undefined ? { ce: r.ce as number } : {}),
      ...(num(r.distill) !== undefined ? { distill: r.distill as number } : {}),
      ...(num(r.lossScale) !== undefined
        ? { lossScale: r.lossScale as number, skipped: r.skipped === true }
        : {}),
    });
  });
  return { steps, verify };
}

function readEvals(dir: string): EvalResult[] {
  const out: EvalResult[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const sub = path.join(dir, e.name);
    const resultFile = path.join(sub, "result.json");
    const curvesFile = path.join(sub, CURVES_FILE);
    if (!fs.existsSync(resultFile) || !fs.existsSync(curvesFile)) continue;
    const result = T.readJsonFile(resultFile);
    const curves = T.readJsonFile(curvesFile);
    if (!isObject(result) || !isObject(result.subsets))
      throw new Error(`${resultFile}: expected {"pairs", "subsets"} as mfr eval writes`);
    if (!isObject(curves) || !Array.isArray(curves.fprKeys) || !isObject(curves.curves))
      throw new Error(`${curvesFile}: expected {"fprKeys", "subsets", "curves"} as mfr eval writes`);
    out.push({
      name: e.name,
      result: result as EvalResult["result"],
      curves: curves as unknown as CurveData,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Everything in runDir a report shows; an error names the file that is not what it should be. */
export function readRun(runDir: string): RunData {
  if (!fs.existsSync(runDir)) throw new Error(`${runDir}: no such run folder`);
  if (!isRunDir(runDir)) throw new Error(`${runDir}: not a run folder (no ${METRICS_FILE} or ${RUN_FILE})`);
  const runFile = path.join(runDir, RUN_FILE);
  const run = fs.existsSync(runFile) ? T.readJsonFile(runFile) : undefined;
  if (run !== undefined && !isObject(run)) throw new Error(`${runFile}: expected a JSON object`);
  return {
    dir: runDir,
    ...readMetrics(path.join(runDir, METRICS_FILE)),
    evals: readEvals(runDir),
    ...(run ? { run } : {}),
  };
}
