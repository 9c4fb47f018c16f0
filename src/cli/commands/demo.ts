// `mfr demo`: the main job on its embedded default: synthetic identities → width-reduced iResNet
// with the CosFace head, trained by the real trainer → verification on unseen, half-masked faces.
import type { Command } from "commander";
import path from "node:path";
import { writeRunReport } from "../../report/index.ts";
import { runDemo } from "../../train/demo.ts";
import demoConfig from "../../../configs/demo.ts";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "train a small face model on built-in synthetic identities; show the loss falling and verification improving",
    )
    .option("--steps <n>", "training steps", "150")
    .option("--seed <n>", "random seed", "0")
    .option("--dir <dir>", "where the demo's data and run go", path.join("runs", "demo"))
    .action(async (opts: { steps: string; seed: string; dir: string }) => {
      const t0 = performance.now();
      const first: number[] = [];
      let lastLoss = NaN;
      const r = await runDemo({
        dir: opts.dir,
        steps: Number(opts.steps),
        seed: Number(opts.seed),
        config: demoConfig,
        onEvent: (e) => {
          switch (e.kind) {
            case "synth":
              console.log(
                `rendered ${e.images} synthetic faces of ${e.identities} identities (${e.seconds.toFixed(1)} s)`,
              );
              break;
            case "start":
              console.log(
                `training iResNet [1,1,1,1] x0.25 (${(e.params / 1e6).toFixed(2)} M parameters) with a CosFace head over ` +
                  `${e.numClasses} identities, ${e.steps} steps, masks on 35% of images`,
              );
              break;
            case "step": {
              const m = e.metrics;
              if (first.length < 10) first.push(m.loss);
              lastLoss = m.loss;
              if (m.step === 1 || m.step % 10 === 0) {
                console.log(
                  `step ${String(m.step).padStart(4)}  loss ${m.loss.toFixed(3).padStart(7)}  lr ${m.lr.toFixed(3)}  ${m.imagesPerSec.toFixed(0)} img/s`,
                );
              }
              break;
            }
            case "verify": {
              const pct = (k: string): string => `${(100 * (e.results[k] ?? NaN)).toFixed(1)}%`;
              console.log(
                `  verification @ step ${e.step}: unseen identities, half masked, ${e.pairs} pairs: ` +
                  `TPR@FPR=1% ${pct("all@1e-2")}, masked vs unmasked ${pct("masked-unmasked@1e-2")}`,
              );
              break;
            }
            case "warning":
              console.log(`warning: ${e.message}`);
              break;
          }
        },
      });
      const mean = first.reduce((a, b) => a + b, 0) / Math.max(1, first.length);
      console.log(
        `loss ${mean.toFixed(3)} (mean of the first ${first.length} steps) -> ${lastLoss.toFixed(3)}; ` +
          `metrics and checkpoints in ${path.join(opts.dir, "run")} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      );
      r.backbone.dispose();
      console.log(`report: ${await writeRunReport(path.join(opts.dir, "run"))}`);
    });
}
