// Entry point of the `mfr` command.
import { buildProgram } from "./program.ts";

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    console.error(`mfr: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
