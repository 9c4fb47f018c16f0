// `mfr models`: the backbone presets with their parameter counts and compute per 112×112 face.
import type { Command } from "commander";
import { presetTable } from "../../models/index.ts";
import { integer, numberAbove } from "../flags.ts";

export function registerModels(program: Command): void {
  program
    .command("models")
    .description("list backbone presets with parameter count and compute (GFLOPs = GMACs, as arcface_torch)")
    .option(
      "--width <w>",
      "channel multiplier (e.g. 0.125 for the tiny test models)",
      numberAbove("--width", 0),
      1,
    )
    .option("--features <n>", "embedding size", integer("--features", 1), 512)
    .option("--json", "print JSON instead of a table")
    .action((opts: { width: number; features: number; json?: boolean }) => {
      const rows = presetTable({ width: opts.width, numFeatures: opts.features });
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      const table = [
        ["name", "family", "blocks", "params (M)", "GFLOPs", "source"],
        ...rows.map((r) => [
          r.name,
          r.family,
          r.blocks.join("/"),
          (r.params / 1e6).toFixed(2),
          (r.macs / 1e9).toFixed(2),
          r.source,
        ]),
      ];
      const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
      const numeric = new Set([3, 4]);
      for (const row of table) {
        console.log(
          row
            .map((cell, c) => (numeric.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
            .join("  ")
            .trimEnd(),
        );
      }
      console.log(
        `\nat 112x112, width x${opts.width}, ${opts.features}-d embedding; GFLOPs counts conv and FC multiply-accumulates`,
      );
    });
}
