// `mfr demo`: the main job on its embedded default data.
import type { Command } from "commander";
import { tinyTrainingRun } from "../../train/tiny.ts";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("train a small network on built-in synthetic data and show its loss falling")
    .option("--steps <n>", "training steps", "60")
    .option("--seed <n>", "random seed", "0")
    .action((opts: { steps: string; seed: string }) => {
      const t0 = performance.now();
      const r = tinyTrainingRun({
        steps: Number(opts.steps),
        seed: Number(opts.seed),
        onStep: (step, loss) => {
          if (step === 1 || step % 10 === 0)
            console.log(`step ${String(step).padStart(4)}  loss ${loss.toFixed(4)}`);
        },
      });
      const first = r.losses[0] ?? NaN;
      const last = r.losses.at(-1) ?? NaN;
      console.log(
        `loss ${first.toFixed(3)} -> ${last.toFixed(3)}, held-out accuracy ${(100 * r.accuracy).toFixed(1)}% ` +
          `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    });
}
