// Entry point of the `mfr` command. An error prints as `mfr: <message>` and nothing more: a stack
// trace tells a user nothing they can act on, so it is shown only with --verbose (with the
// causes). Exit codes (docs/cli.md): 0 done, 1 error, 2 usage (flags, arguments), 130 training
// interrupted by Ctrl-C; `mfr launch` exits with its first failing rank's code.
import { CommanderError, InvalidArgumentError } from "commander";

const USAGE = 2;

function verbose(): boolean {
  const args = process.argv.slice(2);
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).includes("--verbose");
}

function report(err: unknown): void {
  if (verbose() && err instanceof Error) {
    let e: unknown = err;
    for (let depth = 0; e instanceof Error && depth < 8; depth++, e = e.cause)
      console.error(`${depth ? "caused by: " : "mfr: "}${e.stack ?? e.message}`);
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  // The addon's loader says "mfr: ..." itself (it also fails outside the CLI).
  console.error(`mfr: ${message.replace(/^mfr: /, "")}`);
}

function fail(err: unknown): void {
  if (err instanceof CommanderError && !(err instanceof InvalidArgumentError)) {
    // Commander has printed its message and the help already; help and --version exit 0.
    process.exitCode = err.exitCode === 0 ? 0 : USAGE;
    return;
  }
  report(err);
  // A flag's value refused by the command's own checks is a usage error too.
  process.exitCode = err instanceof InvalidArgumentError ? USAGE : 1;
}

// An error outside the command's promise (an event handler, a worker's message) must not print a
// stack either; the process's state is unknown then, so it ends.
process.on("uncaughtException", (err) => {
  fail(err);
  process.exit(1);
});

try {
  // Imported here, not above: loading the commands loads the addon, and a missing or broken addon
  // is an error to report like any other.
  const { buildProgram } = await import("./program.ts");
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  fail(err);
}
