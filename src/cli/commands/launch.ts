// `mfr launch --nproc-per-node K [--nnodes N --node-rank R --master-addr A --master-port P] -- <command>`
// runs any program on K ranks, as torchrun does; an mfr subcommand runs mfr.
import type { Command } from "commander";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { launch, type LaunchOptions } from "../../distributed/index.ts";
import { integer, seconds } from "../flags.ts";

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin");
// Ranks start the way users start mfr: bin/mfr.js registers the TypeScript loader in-process, so
// this process's execArgv holds no loader to pass on, and running src/cli/main.ts directly would
// fail on the ".ts" extension.
const mfrBin = path.join(bin, "mfr.js");
// What a Node program started by mfr gets first: the TypeScript loader, and stopping with its parent.
const preamble = pathToFileURL(path.join(bin, "preamble.js")).href;
const NODE_SCRIPT = /\.[cm]?[jt]s$/;

/**
 * How a rank runs the words after `--`: an mfr subcommand (`train cfg.ts`) runs mfr; `node …` and a
 * script (`my.ts`, `my.js`) run on this Node with mfr's preamble, so TypeScript loads; anything else
 * is an executable run as given.
 */
export function rankProgram(
  command: readonly string[],
  subcommands: ReadonlySet<string>,
): Pick<LaunchOptions, "program" | "argv" | "execArgv"> {
  const [first = "", ...rest] = command;
  if (subcommands.has(first)) return { argv: [mfrBin, ...command], execArgv: [] };
  if (first === "node") return { argv: rest, execArgv: ["--import", preamble] };
  if (NODE_SCRIPT.test(first)) return { argv: [...command], execArgv: ["--import", preamble] };
  return { program: first, argv: rest };
}

export function registerLaunch(program: Command): void {
  program
    .command("launch")
    .description(
      "run a program or an mfr command on several ranks with torchrun's variables (Slurm/Open MPI ranks need no launcher)",
    )
    .requiredOption("--nproc-per-node <k>", "processes on this machine", integer("--nproc-per-node", 1))
    .option("--nnodes <n>", "machines in the job", integer("--nnodes", 1), 1)
    .option("--node-rank <r>", "this machine's index", integer("--node-rank", 0), 0)
    .option("--master-addr <addr>", "rank 0's address", "127.0.0.1")
    .option(
      "--master-port <port>",
      "rank 0's port (default: a free one on a single node, else 29500)",
      integer("--master-port", 1, 65535),
    )
    .option("--grace <seconds>", "time survivors get to stop after a rank fails", seconds("--grace"), 5)
    .argument(
      "<command...>",
      "after --: an mfr command (train cfg.ts), a script (my.ts, node my.ts) or any program",
    )
    .action(
      async (
        command: string[],
        opts: {
          nprocPerNode: number;
          nnodes: number;
          nodeRank: number;
          masterAddr: string;
          masterPort?: number;
          grace: number;
        },
      ) => {
        if (opts.nodeRank >= opts.nnodes)
          throw new Error(`--node-rank ${opts.nodeRank} must be below --nnodes ${opts.nnodes}`);
        const subcommands = new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()]));
        const job = await launch({
          nprocPerNode: opts.nprocPerNode,
          nnodes: opts.nnodes,
          nodeRank: opts.nodeRank,
          masterAddr: opts.masterAddr,
          masterPort: opts.masterPort,
          graceMs: opts.grace * 1000,
          ...rankProgram(command, subcommands),
        });
        const r = await job.result;
        if (r.exitCode !== 0) {
          console.error(`mfr launch: ${r.message}; the other ranks were stopped`);
          process.exitCode = r.exitCode;
        }
      },
    );
}
