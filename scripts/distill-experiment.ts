// Does feature distillation help a small student on masked faces? The issue-14 experiment, at the
// demo's scale and with the demo's own stages (src/demo: the same data, configs and commands):
//   1. synthetic training identities; held-out identities, half their photos masked;
//   2. the demo's teacher (configs/demo_teacher.ts), trained once;
//   3. for each seed, the demo's student (configs/demo.ts) for the same steps: from scratch, and
//      distilled from the teacher with each λ (the recipe's 9 and others);
//   4. each model evaluated with the MFR protocol on the held-out set: masked probes against the
//      unmasked gallery of other photos, exact TPR at FPR 1e-3 and 1e-4.
// Prints the table (mean ± sample standard deviation over seeds, and each seed's figure) that
// docs/distillation.md shows, and writes results.json beside the runs.
// Run: node --import tsx scripts/distill-experiment.ts [--out DIR] [--seeds 3] [--lambdas 9,3]
//      [--steps 300] [--teacher-steps 300] [--identities 200] [--images 16] [--held-out 120]
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  DEMO_FPRS,
  type DemoEvent,
  type DemoOptions,
  type DemoStage,
  dataStages,
  demoPaths,
  evalStage,
  readFigures,
  runStages,
  trainStage,
} from "../src/demo/index.ts";

const { values: a } = parseArgs({
  options: {
    out: { type: "string", default: "runs/distill-experiment" },
    seeds: { type: "string", default: "3" },
    lambdas: { type: "string", default: "9,3" },
    steps: { type: "string", default: "300" },
    "teacher-steps": { type: "string", default: "300" },
    identities: { type: "string", default: "200" },
    images: { type: "string", default: "16" },
    "held-out": { type: "string", default: "120" },
    ranks: { type: "string", default: "2" },
  },
});
const o: DemoOptions = {
  dir: a.out!,
  identities: Number(a.identities),
  imagesPerIdentity: Number(a.images),
  heldOutIdentities: Number(a["held-out"]),
  steps: Number(a.steps),
  teacherSteps: Number(a["teacher-steps"]),
  scratch: true,
  ranks: Number(a.ranks),
  seed: 0,
  stdio: "pipe",
};
const p = demoPaths(o.dir);
const seeds = Array.from({ length: Number(a.seeds) }, (_, i) => i + 1);
const lambdas = a.lambdas!.split(",").map(Number);
const log = (s: string): void => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
const emit = (e: DemoEvent): void => {
  if (e.kind === "stage") log(e.title);
  else if (e.kind === "stage-done") log(`  done in ${e.seconds.toFixed(0)} s`);
};
const run = (stages: readonly DemoStage[]): Promise<void> => runStages(stages, o, emit);

// A finished teacher (or data) from an earlier call is kept: only students are retrained.
if (!fs.existsSync(path.join(p.teacher, "eval", "result.json"))) {
  for (const d of [p.data, p.heldOut, p.probes, p.groups, p.teacher])
    fs.rmSync(d, { recursive: true, force: true });
  await run([
    ...dataStages(o),
    trainStage(o, "teacher", { runDir: p.teacher, teacher: true, steps: o.teacherSteps }),
    evalStage(o, "teacher: held-out evaluation", p.teacher, p.teacher),
  ]);
}
const results: { name: string; seed: number; tpr: Record<string, number | null> }[] = [
  { name: "teacher", seed: 0, tpr: readFigures("teacher", p.teacher).tpr["masked-unmasked"]! },
];
const conditions: { name: string; lambda: number | null }[] = [
  { name: "student from scratch", lambda: null },
  ...lambdas.map((l) => ({ name: `student distilled λ=${l}`, lambda: l })),
];
for (const seed of seeds)
  for (const c of conditions) {
    const runDir = path.join(o.dir, `s${seed}-${c.lambda ?? "scratch"}`);
    fs.rmSync(runDir, { recursive: true, force: true });
    await run([
      trainStage(o, `${c.name}, seed ${seed}`, {
        runDir,
        teacher: false,
        steps: o.steps,
        lambda: c.lambda,
        seed,
      }),
      evalStage(o, `${c.name}, seed ${seed}: held-out evaluation`, runDir, runDir),
    ]);
    const tpr = readFigures(c.name, runDir).tpr["masked-unmasked"]!;
    results.push({ name: c.name, seed, tpr });
    log(`${c.name} seed ${seed}: ${JSON.stringify(tpr)}`);
    fs.writeFileSync(path.join(o.dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
  }

// The table: mean ± sample standard deviation over seeds, and each seed's figure.
const stats = (xs: number[]): string => {
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1)) : 0;
  return `${m.toFixed(3)} ± ${sd.toFixed(3)} (${xs.map((x) => x.toFixed(3)).join(", ")})`;
};
const lines = [
  `| model (masked probes vs unmasked gallery) | ${DEMO_FPRS.map((f) => `TPR@FPR=${f}`).join(" | ")} |`,
  `|---|${DEMO_FPRS.map(() => "---").join("|")}|`,
];
for (const name of ["teacher", ...conditions.map((c) => c.name)]) {
  const rs = results.filter((r) => r.name === name);
  lines.push(`| ${name} | ${DEMO_FPRS.map((f) => stats(rs.map((r) => r.tpr[f] ?? NaN))).join(" | ")} |`);
}
console.log(lines.join("\n"));
