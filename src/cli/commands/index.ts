// Every subcommand registers itself here; one line each.
import type { Command } from "commander";
import { registerData } from "./data.ts";
import { registerDemo } from "./demo.ts";
import { registerDistill } from "./distill.ts";
import { registerDoctor } from "./doctor.ts";
import { registerEmbed } from "./embed.ts";
import { registerEval } from "./eval.ts";
import { registerExport } from "./export.ts";
import { registerLaunch } from "./launch.ts";
import { registerMask } from "./mask.ts";
import { registerModels } from "./models.ts";
import { registerPack } from "./pack.ts";
import { registerReport } from "./report.ts";
import { registerServe } from "./serve.ts";
import { registerSynth } from "./synth.ts";
import { registerTrain } from "./train.ts";

export function registerAll(program: Command): void {
  registerData(program);
  registerDemo(program);
  registerDistill(program);
  registerDoctor(program);
  registerEmbed(program);
  registerEval(program);
  registerExport(program);
  registerLaunch(program);
  registerMask(program);
  registerModels(program);
  registerPack(program);
  registerReport(program);
  registerServe(program);
  registerSynth(program);
  registerTrain(program);
}
