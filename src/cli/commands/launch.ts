// `mfr launch --nproc-per-node K [--nnodes N --node-rank R --master-addr A --master-port P] -- <mfr command>`
import type { Command } from "commander";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "../../distributed/index.ts";

// Ranks start the way users start mfr: bin/mfr.js registers the TypeScript loader in-process, so
// this process's execArgv holds no loader to pass on, and running src/cli/main.ts directly would
// fail on the ".ts" extension.
const mfrBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/mfr.js");

export function registerLaunch(program: Command): void {
  program
    .command("launch")
    .description(
      "run an mfr command on several ranks (torchrun's variables; Slurm/Open MPI ranks need no launcher)",
    )
    .requiredOption("--nproc-per-node <k>", "processes on this machine", (v) => Number(v))
    .option("--nnodes <n>", "machines in the job", (v) => Number(v), 1)
    .option("--node-rank <r>", "this machine's index", (v) => Number(v), 0)
    .option("--master-addr <addr>", "rank 0's address", "127.0.0.1")
    .option("--master-port <port>", "rank 0's port (default: a free one on a single node, else 29500)", (v) =>
      Number(v),
    )
    .option("--grace <seconds>", "time survivors get to stop after a rank fails", (v) => Number(v), 5)
    .argument("<command...>", "the mfr command to run on every rank (after --)")
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
        const job = await launch({
          nprocPerNode: opts.nprocPerNode,
          nnodes: opts.nnodes,
          nodeRank: opts.nodeRank,
          masterAddr: opts.masterAddr,
          masterPort: opts.masterPort,
          graceMs: opts.grace * 1000,
          argv: [mfrBin, ...command],
          execArgv: [],
        });
        const r = await job.result;
        if (r.exitCode !== 0) {
          console.error(`mfr launch: ${r.message}; the other ranks were stopped`);
          process.exitCode = r.exitCode;
        }
      },
    );
}
