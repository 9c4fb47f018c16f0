// `mfr report RUN_DIR`: rebuilds the run's report.html from what the folder holds.
import type { Command } from "commander";
import { writeRunReport } from "../../report/index.ts";

export function registerReport(program: Command): void {
  program
    .command("report")
    .description(
      "rebuild RUN_DIR/report.html: training curves, verification over time, ROC/DET, config, versions (one offline file)",
    )
    .argument("<run-dir>", "a run folder (runDir of a config: metrics.jsonl, checkpoints/, eval/)")
    .action(async (runDir: string) => {
      console.log(`report: ${await writeRunReport(runDir)}`);
    });
}
