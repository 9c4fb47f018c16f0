// The `mfr` command tree. Library code never prints; commands do (tables, progress, JSON).
import { Command } from "commander";
import { registerAll } from "./commands/index.ts";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("mfr")
    .description("Masked face recognition at WebFace260M scale: train, distill, evaluate, export")
    .showHelpAfterError();
  registerAll(program);
  return program;
}
