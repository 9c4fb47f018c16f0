// The launcher: starts one process per rank with torchrun's variables, watches them, and ends
// the job when any rank fails (others are terminated, then killed after a grace period), so a
// dead rank never leaves the rest hanging or orphaned. Ranks also stop when the launcher itself
// dies, by any signal (parent.ts).
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { EventEmitter } from "node:events";
import { heapEnv } from "../torch/heap.ts";
import { withParentPipe } from "./parent.ts";

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  /** Default: a free port when single-node, 29500 otherwise. */
  masterPort?: number;
  /**
   * The executable each rank runs (found on the PATH like a shell would). Default: this Node,
   * started with execArgv then argv.
   */
  program?: string;
  /** The arguments: for Node, the script and its arguments (e.g. [mfrBin, "train", "cfg.ts"]). */
  argv: string[];
  /** Node flags for the children when program is not given (default: this process's). */
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Time between SIGTERM and SIGKILL when stopping the surviving ranks. */
  graceMs?: number;
  /** Where children's stdout/stderr go: inherit (default) or pipe (available on the events). */
  stdio?: "inherit" | "pipe";
}

export interface LaunchResult {
  exitCode: number;
  /** The first rank that failed, and how. */
  failedRank?: number;
  message?: string;
}

/** Emits "spawn" (rank, pid) and "exit" (rank, code, signal). */
export class Launch extends EventEmitter {
  readonly children: ChildProcess[] = [];
  /** Settles when every rank has exited. */
  result: Promise<LaunchResult> = Promise.resolve({ exitCode: 0 });
}

/**
 * Reads the output of piped child processes (ranks of a test or benchmark): every stdout line that
 * starts with "{" is parsed as JSON, stderr is kept for error messages. `done` settles when every
 * stdout has ended.
 */
export function collectJsonLines<R>(
  children: readonly { stdout: NodeJS.ReadableStream | null; stderr: NodeJS.ReadableStream | null }[],
): { lines: R[]; stderr: () => string; done: Promise<void> } {
  const lines: R[] = [];
  const errs: string[] = [];
  const ended = children.map(
    (c) =>
      new Promise<void>((resolve) => {
        let buf = "";
        c.stderr?.on("data", (d: Buffer) => errs.push(d.toString()));
        if (!c.stdout) return resolve();
        c.stdout.on("data", (d: Buffer) => (buf += d.toString()));
        c.stdout.on("end", () => {
          for (const l of buf.split("\n")) if (l.startsWith("{")) lines.push(JSON.parse(l) as R);
          resolve();
        });
      }),
  );
  return { lines, stderr: () => errs.join(""), done: Promise.all(ended).then(() => undefined) };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

export async function launch(o: LaunchOptions): Promise<Launch> {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  if (!Number.isInteger(o.nprocPerNode) || o.nprocPerNode < 1)
    throw new Error("--nproc-per-node must be a positive integer");
  if (nodeRank >= nnodes) throw new Error(`--node-rank ${nodeRank} must be below --nnodes ${nnodes}`);
  const worldSize = nnodes * o.nprocPerNode;
  const masterPort = o.masterPort ?? (nnodes === 1 ? await freePort() : 29500);
  const masterAddr = o.masterAddr ?? "127.0.0.1";
  const graceMs = o.graceMs ?? 5000;
  const job = new Launch();
  const children = job.children;
  const result = new Promise<LaunchResult>((resolve) => {
    let remaining = o.nprocPerNode;
    let failure: LaunchResult | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const stopOthers = (): void => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
      killTimer = setTimeout(() => {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      }, graceMs);
      killTimer.unref();
    };
    for (let local = 0; local < o.nprocPerNode; local++) {
      const rank = nodeRank * o.nprocPerNode + local;
      const [file, args] = o.program
        ? [o.program, o.argv]
        : [process.execPath, [...(o.execArgv ?? process.execArgv), ...o.argv]];
      const env = {
        ...heapEnv(o.env ?? process.env),
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(worldSize),
        LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        GROUP_RANK: String(nodeRank),
        MASTER_ADDR: masterAddr,
        MASTER_PORT: String(masterPort),
      };
      const std =
        o.stdio === "pipe"
          ? (["ignore", "pipe", "pipe"] as const)
          : (["inherit", "inherit", "inherit"] as const);
      const child = spawn(file, args, withParentPipe(std, env));
      children.push(child);
      queueMicrotask(() => job.emit("spawn", rank, child.pid));
      const ended = (code: number | null, signal: NodeJS.Signals | null, why?: string): void => {
        job.emit("exit", rank, code, signal);
        remaining--;
        const failed = code !== 0;
        if (failed && failure === undefined) {
          failure = {
            exitCode: code && code > 0 ? code : 1,
            failedRank: rank,
            message: `rank ${rank} ${why ?? `(pid ${child.pid}) ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`}`,
          };
          stopOthers();
        }
        if (remaining === 0) {
          if (killTimer) clearTimeout(killTimer);
          resolve(failure ?? { exitCode: 0 });
        }
      };
      child.on("exit", (code, signal) => ended(code, signal));
      // A program that cannot be started (not found, not executable) never exits: it errors.
      child.on("error", (err) => {
        if (child.pid === undefined) ended(127, null, `could not start ${file}: ${err.message}`);
      });
    }
  });
  const forward = (sig: NodeJS.Signals): void => {
    for (const c of children) if (c.exitCode === null) c.kill(sig);
  };
  const onInt = (): void => forward("SIGINT");
  const onTerm = (): void => forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  void result.finally(() => {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  });
  job.result = result;
  return job;
}
