// The demo behind `mfr demo` / `npm run demo`: the challenge entry's recipe scaled down to minutes
// on a small CPU, run as the very `mfr` commands a user would type, each printed before it runs:
//   1. synthetic identities for training; held-out identities, half their photos masked (the
//      probes), the other half not (the gallery), with the mask groups for `mfr eval --groups`;
//   2. a deeper teacher, then the student distilled from it (CE + λ‖t/‖t‖ − s/‖s‖‖², λ = 9), both
//      on `ranks` processes through `mfr launch`: the model-parallel head with sampling,
//      micro-batches, activation checkpointing, bf16 autocast and ZeRO-1 (configs/demo*.ts);
//      with `scratch`, the same student without the teacher, for comparison;
//   3. the student's BatchNorm folded and exported to ONNX, checked against the challenge's rules;
//   4. every model evaluated on the held-out set with the MFR protocol (exact TPR@FPR over all
//      pairs, by subset), the ONNX student as deployed; each run's report.html.
// Commands rather than library calls: the demo then shows, and tests, exactly what a user runs,
// and each stage's memory goes back to the system when its process ends.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../torch/index.ts";

const MFR_BIN = fileURLToPath(new URL("../../bin/mfr.js", import.meta.url));
/** Photos per held-out identity: about half masked probes, half unmasked gallery. */
const HELD_OUT_IMAGES = 6;
export const DEMO_FPRS = ["1e-3", "1e-4"] as const;

export interface DemoOptions {
  /** Root of everything the demo writes; only its own sub-folders are replaced. */
  dir: string;
  /** Training identities (the held-out set has its own, never seen in training). */
  identities: number;
  imagesPerIdentity: number;
  heldOutIdentities: number;
  /** Steps of the student (and of the scratch student). */
  steps: number;
  teacherSteps: number;
  /** Student backbone: a preset or four block counts (configs/demo.ts's when absent). */
  backbone?: string;
  /** Also train the student without the teacher. */
  scratch: boolean;
  ranks: number;
  seed: number;
  /** Where the commands' own output goes: the terminal, or pipes the caller reads. */
  stdio: "inherit" | "pipe";
}

export interface DemoStage {
  title: string;
  /** The arguments after `mfr`, computed when the stage starts (they may name earlier results). */
  argv: () => string[];
}

/** Held-out figures of one model: subset → FPR → TPR. */
export interface DemoFigures {
  model: string;
  runDir: string;
  tpr: Record<string, Record<string, number | null>>;
}

export type DemoEvent =
  | { kind: "stage"; index: number; total: number; title: string; command: string }
  | { kind: "stage-done"; index: number; seconds: number }
  | { kind: "output"; text: string };

export interface DemoResult {
  seconds: number;
  figures: DemoFigures[];
  /** The student's report.html. */
  report: string;
  onnx: string;
}

/** Paths of the demo's parts under `dir`. */
export function demoPaths(dir: string) {
  return {
    data: path.join(dir, "data"),
    heldOut: path.join(dir, "held-out"),
    probes: path.join(dir, "held-out-masked"),
    groups: path.join(dir, "held-out-groups.npy"),
    teacher: path.join(dir, "teacher"),
    student: path.join(dir, "student"),
    scratch: path.join(dir, "scratch"),
    onnx: path.join(dir, "student", "model.onnx"),
  };
}

const shellQuote = (a: string): string => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

/** Training and held-out data: synthetic identities, half the held-out photos masked. */
export function dataStages(o: DemoOptions): DemoStage[] {
  const p = demoPaths(o.dir);
  const synth = (out: string, identities: number, images: number, seed: number): string[] => [
    ...["synth", "--out", out, "--identities", String(identities)],
    ...["--images-per-identity", String(images), "--seed", String(seed)],
  ];
  return [
    {
      title: "synthetic training identities",
      argv: () => synth(p.data, o.identities, o.imagesPerIdentity, o.seed),
    },
    {
      title: "held-out identities, never seen in training",
      argv: () => synth(p.heldOut, o.heldOutIdentities, HELD_OUT_IMAGES, o.seed + 1_000_000),
    },
    {
      title: "masks on half the held-out photos (the probes); the rest is the gallery",
      argv: () => [
        "mask",
        p.heldOut,
        p.probes,
        "--prob",
        "0.5",
        "--seed",
        String(o.seed),
        "--groups",
        p.groups,
      ],
    },
  ];
}

/**
 * A training run on `o.ranks` processes: the teacher (configs/demo_teacher.ts), or the student
 * (configs/demo.ts), distilled from the demo's teacher with weight `lambda` unless it is null.
 */
export function trainStage(
  o: DemoOptions,
  title: string,
  run: { runDir: string; teacher: boolean; steps: number; lambda?: number | null; seed?: number },
): DemoStage {
  const p = demoPaths(o.dir);
  // In-training verification on the held-out identities (masks drawn on the fly, half the photos).
  const verify = JSON.stringify([{ data: p.heldOut, name: "held-out", fpr: [...DEMO_FPRS] }]);
  const config = run.teacher ? "configs/demo_teacher.ts" : "configs/demo.ts";
  const sets: [string, string][] = [
    ["runDir", run.runDir],
    ["data.path", p.data],
    ["steps", String(run.steps)],
    ["seed", String(run.seed ?? o.seed)],
    ["verify.sets", verify],
  ];
  if (!run.teacher && o.backbone !== undefined) sets.push(["model.backbone", JSON.stringify(o.backbone)]);
  if (!run.teacher && run.lambda != null) {
    sets.push(["distill.teacher", p.teacher]);
    if (run.lambda !== 9) sets.push(["distill.lambda", String(run.lambda)]);
  }
  return {
    title,
    argv: () => [
      ...["launch", "--nproc-per-node", String(o.ranks), "--", "train", config],
      ...sets.flatMap(([k, v]) => ["--set", `${k}=${v}`]),
    ],
  };
}

/**
 * The MFR protocol on the held-out set: `model` (a run folder, a checkpoint or an .onnx) into
 * `runDir`/eval.
 */
export function evalStage(o: DemoOptions, title: string, model: string, runDir: string): DemoStage {
  const p = demoPaths(o.dir);
  return {
    title,
    argv: () => [
      ...["eval", "--model", model, "--data", p.probes, "--groups", p.groups],
      ...["--fpr", DEMO_FPRS.join(","), "--report", path.join(runDir, "eval")],
    ],
  };
}

/** The stages of a demo, in order. */
export function demoStages(o: DemoOptions): DemoStage[] {
  const p = demoPaths(o.dir);
  const stages: DemoStage[] = [
    ...dataStages(o),
    trainStage(o, "the teacher", { runDir: p.teacher, teacher: true, steps: o.teacherSteps }),
    trainStage(o, "the student, distilled from the teacher (λ = 9)", {
      runDir: p.student,
      teacher: false,
      steps: o.steps,
      lambda: 9,
    }),
  ];
  if (o.scratch)
    stages.push(
      trainStage(o, "the same student from scratch (no teacher), for comparison", {
        runDir: p.scratch,
        teacher: false,
        steps: o.steps,
      }),
    );
  stages.push(
    {
      title: "the student to ONNX: BatchNorm folded, checked against onnxruntime and the challenge's rules",
      argv: () => ["export", "--model", p.student, "--out", p.onnx, "--fold-bn", "--check-mfr"],
    },
    evalStage(o, "the teacher on the held-out set", p.teacher, p.teacher),
  );
  if (o.scratch) stages.push(evalStage(o, "the scratch student on the held-out set", p.scratch, p.scratch));
  stages.push(evalStage(o, "the ONNX student on the held-out set", p.onnx, p.student));
  return stages;
}

/** Runs the stages in order, each to completion, announcing each with its command line. */
export async function runStages(
  stages: readonly DemoStage[],
  o: Pick<DemoOptions, "stdio">,
  emit: (e: DemoEvent) => void = () => {},
): Promise<void> {
  for (const [i, s] of stages.entries()) {
    const argv = s.argv();
    const command = `mfr ${argv.map(shellQuote).join(" ")}`;
    emit({ kind: "stage", index: i + 1, total: stages.length, title: s.title, command });
    const ts = performance.now();
    await runMfr(argv, o, emit);
    emit({ kind: "stage-done", index: i + 1, seconds: (performance.now() - ts) / 1000 });
  }
}

/**
 * Runs `mfr ...argv` to completion; rejects, naming the command, unless it exits 0. With piped
 * output the error ends with the command's last lines, which nobody else has seen.
 */
function runMfr(argv: string[], o: Pick<DemoOptions, "stdio">, emit: (e: DemoEvent) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MFR_BIN, ...argv], { stdio: ["ignore", o.stdio, o.stdio] });
    let tail = "";
    for (const s of [child.stdout, child.stderr])
      s?.on("data", (b: Buffer) => {
        const text = b.toString();
        tail = (tail + text).slice(-4000);
        emit({ kind: "output", text });
      });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
      const output = o.stdio === "pipe" && tail ? `; its last output:\n${tail.trimEnd()}` : "";
      reject(new Error(`demo: \`mfr ${argv.map(shellQuote).join(" ")}\` ${how}${output}`));
    });
  });
}

/** The held-out figures `evalStage` left in `runDir`/eval. */
export function readFigures(model: string, runDir: string): DemoFigures {
  const file = path.join(runDir, "eval", "result.json");
  // mfr's JSON reader: a missing or damaged file is an error naming it.
  const r = T.readJsonFile(file) as { subsets: Record<string, { tpr: Record<string, number | null> }> };
  return { model, runDir, tpr: Object.fromEntries(Object.entries(r.subsets).map(([k, s]) => [k, s.tpr])) };
}

export async function runDemo(o: DemoOptions, emit: (e: DemoEvent) => void = () => {}): Promise<DemoResult> {
  const t0 = performance.now();
  const p = demoPaths(o.dir);
  // A fresh demo each time: its own folders only, never anything else under `dir`.
  for (const d of [p.data, p.heldOut, p.probes, p.groups, p.teacher, p.student, p.scratch])
    fs.rmSync(d, { recursive: true, force: true });
  await runStages(demoStages(o), o, emit);
  return {
    seconds: (performance.now() - t0) / 1000,
    figures: [
      readFigures("teacher", p.teacher),
      ...(o.scratch ? [readFigures("student from scratch", p.scratch)] : []),
      readFigures("student distilled (ONNX)", p.student),
    ],
    report: path.join(p.student, "report.html"),
    onnx: p.onnx,
  };
}
