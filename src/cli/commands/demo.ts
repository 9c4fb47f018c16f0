// `mfr demo`: the main job on its embedded default: the challenge recipe, scaled down (src/demo).
import type { Command } from "commander";
import path from "node:path";
import { DEMO_FPRS, type DemoFigures, runDemo } from "../../demo/index.ts";
import { GROUP_SUBSETS } from "../../eval/index.ts";
import { integer } from "../flags.ts";

const SUBSETS = [...GROUP_SUBSETS, "all"];

function table(rows: readonly DemoFigures[]): string {
  const cells = SUBSETS.flatMap((s) => DEMO_FPRS.map((f) => `${s} @${f}`));
  const width = Math.max(...rows.map((r) => r.model.length));
  const lines = [`${"".padEnd(width)}  ${cells.map((c) => c.padStart(Math.max(8, c.length))).join("  ")}`];
  for (const r of rows) {
    const values = SUBSETS.flatMap((s) =>
      DEMO_FPRS.map((f) => {
        const v = r.tpr[s]?.[f];
        return v === null || v === undefined ? "–" : v.toFixed(3);
      }),
    );
    lines.push(
      `${r.model.padEnd(width)}  ${values.map((v, i) => v.padStart(Math.max(8, cells[i]!.length))).join("  ")}`,
    );
  }
  return lines.join("\n");
}

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "the recipe in minutes on synthetic faces: teacher, distilled student on 2 ranks, ONNX export, MFR evaluation, report",
    )
    .option("--identities <n>", "training identities", integer("--identities", 2), 200)
    .option("--images <n>", "photos per training identity", integer("--images", 2), 16)
    .option("--held-out <n>", "held-out identities (6 photos each)", integer("--held-out", 2), 120)
    .option("--steps <n>", "student training steps", integer("--steps", 1), 300)
    .option("--teacher-steps <n>", "teacher training steps", integer("--teacher-steps", 1), 300)
    .option(
      "--backbone <name>",
      "student backbone: a preset (r18, r50, ...) or four block counts like [1,1,1,1]",
    )
    .option("--scratch", "also train the student without the teacher, for comparison")
    .option("--ranks <k>", "training processes (mfr launch --nproc-per-node)", integer("--ranks", 1), 2)
    .option("--seed <n>", "random seed", integer("--seed", 0), 0)
    .option("--dir <dir>", "where the demo's data and runs go", path.join("runs", "demo"))
    .action(
      async (o: {
        identities: number;
        images: number;
        heldOut: number;
        steps: number;
        teacherSteps: number;
        backbone?: string;
        scratch?: boolean;
        ranks: number;
        seed: number;
        dir: string;
      }) => {
        const r = await runDemo(
          {
            dir: o.dir,
            identities: o.identities,
            imagesPerIdentity: o.images,
            heldOutIdentities: o.heldOut,
            steps: o.steps,
            teacherSteps: o.teacherSteps,
            backbone: o.backbone,
            scratch: !!o.scratch,
            ranks: o.ranks,
            seed: o.seed,
            stdio: "inherit",
          },
          (e) => {
            if (e.kind === "stage") console.log(`\n[${e.index}/${e.total}] ${e.title}\n$ ${e.command}`);
            else if (e.kind === "stage-done") console.log(`[${e.index}] done in ${e.seconds.toFixed(0)} s`);
          },
        );
        console.log(
          `\nheld-out identities, masked probes against an unmasked gallery of other photos: TPR at FPR\n${table(r.figures)}`,
        );
        console.log(`\nONNX model: ${r.onnx}`);
        console.log(`report: ${r.report}`);
        console.log(`demo finished in ${(r.seconds / 60).toFixed(1)} min`);
      },
    );
}
