// The `mfr` command tree. Library code never prints; commands do (tables, progress, JSON).
import { Command } from "commander";
import { registerAll } from "./commands/index.ts";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("mfr")
    .description("Masked face recognition at WebFace260M scale: train, distill, evaluate, export")
    .option("--verbose", "on error, print the stack trace and its causes (errors print one line otherwise)")
    .showHelpAfterError()
    // Usage errors reach main.ts (exit code 2) instead of commander's process.exit(1); set before
    // the subcommands are added, which copy it.
    .exitOverride();
  registerAll(program);
  return program;
}
