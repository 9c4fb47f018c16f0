// A pool of decode worker threads. Tasks go to the worker with the least queued work; each task
// resolves with its per-sample results. Workers keep the process alive until close(): unref'ing
// idle ones was tried, and left terminate() pending with the event loop run dry (Node 20).
import { Worker } from "node:worker_threads";
import type { ItemResult, WorkerInit, WorkerReply, WorkerTask } from "./worker-protocol.ts";

/**
 * Starts a worker from a module URL. From TypeScript sources (run through tsx) the worker needs
 * tsx's loader registered first: Node 20 does not pass `--import` hooks on to worker threads.
 */
export function startWorker(url: URL): Worker {
  if (!url.pathname.endsWith(".ts")) return new Worker(url);
  const api = import.meta.resolve("tsx/esm/api");
  const code = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(url.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
}

interface Pending {
  resolve: (r: { results: ItemResult[]; busyMs: number }) => void;
  reject: (e: Error) => void;
  items: number;
}

class PoolWorker {
  readonly pending = new Map<number, Pending>();
  queued = 0;
  failure: Error | undefined;
  constructor(readonly worker: Worker) {}
}

export class DecodePool {
  private nextId = 0;
  private closed = false;

  private constructor(private readonly workers: PoolWorker[]) {}

  static async start(n: number, init: WorkerInit): Promise<DecodePool> {
    if (!Number.isInteger(n) || n < 1) throw new Error(`workers must be a positive integer, got ${n}`);
    const url = new URL("./decode-worker.ts", import.meta.url);
    const ws = Array.from({ length: n }, () => new PoolWorker(startWorker(url)));
    const pool = new DecodePool(ws);
    try {
      await Promise.all(ws.map((w) => pool.attach(w, init)));
    } catch (e) {
      // One worker failed to start: the others would keep the process alive forever.
      await pool.close();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  private attach(w: PoolWorker, init: WorkerInit): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (e: Error): void => {
        w.failure = e;
        for (const p of w.pending.values()) p.reject(e);
        w.pending.clear();
        reject(e);
      };
      w.worker.on("message", (m: WorkerReply) => {
        if (m.type === "ready") resolve();
        else if (m.type === "fatal") fail(new Error(`decode worker: ${m.error}`));
        else {
          const p = w.pending.get(m.id);
          if (!p) return;
          w.pending.delete(m.id);
          w.queued -= p.items;
          p.resolve({ results: m.results, busyMs: m.busyMs });
        }
      });
      w.worker.on("error", (e) => fail(e));
      w.worker.on("exit", (code) => {
        if (!this.closed) fail(new Error(`decode worker exited with code ${code}`));
      });
      w.worker.postMessage(init);
    });
  }

  /** Runs a task on the least busy worker. */
  run(task: Omit<WorkerTask, "type" | "id">): Promise<{ results: ItemResult[]; busyMs: number }> {
    if (this.closed) return Promise.reject(new Error("decode pool is closed"));
    let w = this.workers[0] as PoolWorker;
    for (const c of this.workers) if (c.queued < w.queued) w = c;
    if (w.failure) return Promise.reject(w.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      w.pending.set(id, { resolve, reject, items: task.items.length });
      w.queued += task.items.length;
      const msg: WorkerTask = { type: "task", id, ...task };
      w.worker.postMessage(msg);
    });
  }

  /**
   * Asks every worker to finish its queue and exit; terminate() only after a grace period.
   * Terminating a worker inside a native decode call makes that addon throw while the thread is
   * torn down, which aborts the whole process.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.worker.threadId === -1) return resolve(); // already exited
            const timer = setTimeout(() => void w.worker.terminate(), graceMs);
            w.worker.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            w.worker.postMessage({ type: "close" });
          }),
      ),
    );
  }
}
