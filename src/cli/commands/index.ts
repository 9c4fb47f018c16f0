// Every subcommand registers itself here; one line each.
import type { Command } from "commander";
import { registerDemo } from "./demo.ts";
import { registerEval } from "./eval.ts";
import { registerModels } from "./models.ts";

export function registerAll(program: Command): void {
  registerDemo(program);
  registerEval(program);
  registerModels(program);
}
