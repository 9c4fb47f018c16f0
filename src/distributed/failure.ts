// Naming the rank behind a failed collective. Gloo only says that a receive timed out (or that a
// connection closed); which rank stopped answering is found through the job's store: every rank
// whose collective fails reports itself there, then waits a short while for the others to report.
// A rank that never reports is stopped, hung, cut off, or busy elsewhere: the one to name. When
// the store does not answer either, the rank that serves it (rank 0) is the one that is gone.
// The store is reached through a client of its own whose operations time out quickly, so the
// diagnosis costs seconds even when the network is cut.

/** The store operations the diagnosis needs (c10d's add with delta 0 reads without waiting). */
export interface BoardStore {
  add(key: string, delta: number): number;
}

/** A collective failed; `silentRanks` are the ranks that did not answer. */
export class CollectiveError extends Error {
  constructor(
    message: string,
    readonly silentRanks: readonly number[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CollectiveError";
  }
}

export interface BoardOptions {
  rank: number;
  worldSize: number;
  /** The collective timeout (for messages). */
  timeoutMs: number;
  /** How long to wait for the other ranks' reports (also the store client's own timeout). */
  answerMs: number;
  /** Where the store is, for messages ("10.0.0.1:29500"). */
  storeAt: string;
  now?: () => number;
  sleep?: (ms: number) => void;
}

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

const ranksText = (ranks: readonly number[]): string =>
  `${ranks.length === 1 ? "rank" : "ranks"} ${ranks.join(", ")}`;

export class FailureBoard {
  private explained: CollectiveError | undefined;

  constructor(
    private readonly store: BoardStore,
    private readonly o: BoardOptions,
  ) {}

  /**
   * The error to throw for `cause`, which ended collective `what` on this rank. The first failure
   * is diagnosed (blocking up to answerMs); later ones (the rest of the job unwinding) reuse it.
   */
  explain(cause: unknown, what: string): CollectiveError {
    if (cause instanceof CollectiveError) return cause;
    if (this.explained) return this.explained;
    const { rank, worldSize, timeoutMs } = this.o;
    const reason = cause instanceof Error ? cause.message : String(cause);
    // "within" only when it was the timeout that ended it (not, say, a closed connection)
    const timedOut = /timed? ?out/i.test(reason);
    const within = `${timedOut ? `within ${timeoutMs / 1000} s ` : ""}in ${what}, seen from rank ${rank}`;
    const others = Array.from({ length: worldSize }, (_, k) => k).filter((k) => k !== rank);
    let message: string;
    let silent: number[];
    const answered = this.ask(others);
    if (answered === undefined) {
      // The store lives in rank 0's process: from rank 0 itself this should not happen.
      silent = rank === 0 ? [] : [0];
      message =
        rank === 0
          ? `${what} failed on rank 0, and its own store at ${this.o.storeAt} did not answer: ${reason}`
          : `rank 0 did not answer ${within}; nor did the store it serves at ${this.o.storeAt} ` +
            `(${this.o.answerMs / 1000} s): rank 0 is stopped or unreachable: ${reason}`;
    } else {
      silent = others.filter((k) => !answered.has(k));
      const failedToo = others.filter((k) => answered.has(k));
      const too = failedToo.length ? ` (${ranksText(failedToo)} failed too)` : "";
      message = silent.length
        ? `${ranksText(silent)} did not answer ${within}${too}: ${reason}`
        : `${what} failed on every rank, seen from rank ${rank}: ${reason}`;
    }
    this.explained = new CollectiveError(message, silent, { cause });
    return this.explained;
  }

  /** Reports this rank's failure and returns the ranks that reported one, or undefined if the store is gone. */
  private ask(others: readonly number[]): Set<number> | undefined {
    const store = this.store;
    const now = this.o.now ?? Date.now;
    const sleep = this.o.sleep ?? sleepSync;
    try {
      store.add(`mfr/failed/${this.o.rank}`, 1);
      let reported = store.add("mfr/failed", 1);
      const deadline = now() + this.o.answerMs;
      while (reported < this.o.worldSize && now() < deadline) {
        sleep(100);
        reported = store.add("mfr/failed", 0);
      }
      return new Set(others.filter((k) => store.add(`mfr/failed/${k}`, 0) > 0));
    } catch {
      return undefined;
    }
  }
}
