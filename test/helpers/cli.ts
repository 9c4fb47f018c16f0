// Runs `mfr ARGV` through the command tree in this process, without exiting: for flag checks,
// which fail before any command's action runs.
import { CommanderError } from "commander";
import { buildProgram } from "../../src/cli/program.ts";

/** Resolves with the error the arguments produce (commander's usage text or the thrown message), or "" if accepted. */
export async function parseError(argv: string[]): Promise<string> {
  const program = buildProgram();
  let stderr = "";
  for (const c of [program, ...program.commands])
    c.exitOverride().configureOutput({ writeErr: (s) => (stderr += s), writeOut: () => {} });
  try {
    await program.parseAsync(["node", "mfr", ...argv]);
  } catch (e) {
    return e instanceof CommanderError ? stderr : (e as Error).message;
  }
  return "";
}
