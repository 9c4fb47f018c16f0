// A process group: c10d's TCPStore rendezvous and Gloo (CPU) or NCCL (CUDA) collectives. The
// native group holds the store; mfr's own keys in it are only the failure board's.
// Every collective in mfr goes through this class. Collectives return a Work: wait() blocks,
// waitAsync() waits on a pool thread so timers and signals keep running.
import { native, type NativeGroup, type NativeWork, type ReduceOp } from "../torch/native.ts";
import * as T from "../torch/index.ts";
import { type Placement, placementFromEnv } from "./rendezvous.ts";
import { chooseAddress } from "./address.ts";
import { FailureBoard } from "./failure.ts";

export type { ReduceOp };

export interface GroupOptions {
  /** How long a collective or the rendezvous may take before it fails (ms). */
  timeoutMs?: number;
  /** Default: NCCL when `device` is a CUDA device, else Gloo. */
  backend?: "gloo" | "nccl";
  /** The device this rank's tensors live on; picks the default backend. */
  device?: string;
  /**
   * Address this rank's Gloo device binds to and advertises (default: chooseAddress — the
   * interface in MFR_SOCKET_IFNAME / GLOO_SOCKET_IFNAME, else the one that reaches the master).
   */
  hostname?: string;
}

/** A collective in flight (possibly several native ones). The result is valid once waited for. */
export class Work<R = void> {
  private readonly handles: NativeWork[];
  /**
   * `failed` turns a native failure into the error to throw (one that names the ranks that did
   * not answer); without it (a group of one) nothing can fail.
   */
  constructor(
    handle: NativeWork | NativeWork[] | undefined,
    private readonly finish: () => R,
    private readonly failed?: (e: unknown) => Error,
  ) {
    this.handles = handle === undefined ? [] : Array.isArray(handle) ? handle : [handle];
  }
  wait(timeoutMs?: number): R {
    try {
      for (const h of this.handles) native.workWait(h, timeoutMs);
    } catch (e) {
      throw this.failed ? this.failed(e) : e;
    }
    return this.finish();
  }
  async waitAsync(timeoutMs?: number): Promise<R> {
    try {
      for (const h of this.handles) await native.workWaitAsync(h, timeoutMs);
    } catch (e) {
      throw this.failed ? this.failed(e) : e;
    }
    return this.finish();
  }
  done(): boolean {
    return this.handles.every((h) => native.workDone(h));
  }
}

/** The backend for tensors on `device`: NCCL for CUDA, Gloo for the CPU. */
export function defaultBackend(device = "cpu"): "gloo" | "nccl" {
  return T.deviceKind(device) === "cuda" ? "nccl" : "gloo";
}

/**
 * How long a collective or the rendezvous may wait, unless the caller (the config's dist.timeoutS)
 * says otherwise: long enough for one rank's checkpoint write or verification pass at WebFace260M
 * scale, while the others wait in the next collective, to count as progress (PyTorch's is 30 min).
 */
export const DEFAULT_TIMEOUT_S = 600;

const defaultTimeout = (): number => Number(process.env.MFR_DIST_TIMEOUT_S ?? DEFAULT_TIMEOUT_S) * 1000;

/** How long a failed rank waits for the others to report their failures (and its store client's timeout). */
const answerTimeout = (timeoutMs: number): number => Math.min(timeoutMs, 5000);

export class ProcessGroup {
  /** Collectives issued so far: the same count on every rank, so it names a collective job-wide. */
  private issued = 0;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    private group: NativeGroup | undefined,
    readonly backend: "gloo" | "nccl" | "none",
    private readonly board?: FailureBoard,
  ) {}

  /** A group of one: collectives are no-ops that keep the same call shape. */
  static single(): ProcessGroup {
    return new ProcessGroup(0, 1, undefined, "none");
  }

  /** Joins the job described by `placement` (default: the environment's). Blocks until every rank is in. */
  static init(placement: Placement = placementFromEnv(), o: GroupOptions = {}): ProcessGroup {
    if (placement.worldSize === 1) return ProcessGroup.single();
    const timeoutMs = o.timeoutMs ?? defaultTimeout();
    const { masterAddr, masterPort, rank, worldSize } = placement;
    const backend = o.backend ?? defaultBackend(o.device);
    // Chosen before the rendezvous so that a bad interface name fails at once.
    const hostname =
      backend === "gloo" ? (o.hostname ?? chooseAddress({ masterAddr, masterPort }).address) : undefined;
    const store = native.storeCreate(masterAddr, masterPort, rank === 0, worldSize, timeoutMs);
    let group: NativeGroup;
    if (backend === "nccl") {
      if (!native.groupNccl)
        throw new Error("backend 'nccl' needs mfr built against a CUDA libtorch (MFR_LIBTORCH)");
      group = native.groupNccl(store, rank, worldSize, timeoutMs);
    } else {
      group = native.groupGloo(store, rank, worldSize, timeoutMs, hostname);
    }
    // A second store client for diagnosing failures, each of whose operations has a deadline
    // (c10d's have none on a reply), so that it answers even when the link to the store is cut.
    const answerMs = answerTimeout(timeoutMs);
    const probe = native.storeCreate(masterAddr, masterPort, false, worldSize, answerMs);
    const board = new FailureBoard(
      { add: (key, delta) => native.storeAdd(probe, key, delta, answerMs) },
      { rank, worldSize, timeoutMs, answerMs, storeAt: `${masterAddr}:${masterPort}` },
    );
    return new ProcessGroup(rank, worldSize, group, backend, board);
  }

  /**
   * The error to throw for a failure of this group's collectives that did not come through a
   * Work (e.g. c10d's Reducer inside backward): one naming the ranks that did not answer. Other
   * errors are returned as they are.
   */
  explainFailure(e: unknown, what = "a collective"): unknown {
    // Only communication errors: a rank's own failure (bad data, no memory) stays its own.
    if (!this.board || !(e instanceof Error) || !/gloo\/|NCCL/.test(e.message)) return e;
    return this.board.explain(e, what);
  }

  /** A Work for native handle(s) of collective `kind`, whose failures name the silent ranks. */
  private work<R>(kind: string, handle: NativeWork | NativeWork[], finish: () => R): Work<R> {
    const what = `${kind} #${++this.issued}`;
    return new Work(handle, finish, (e) => this.board!.explain(e, what));
  }

  /** @internal The native group, for src/distributed's own machinery (the Reducer). */
  nativeGroup(): NativeGroup {
    return this.g();
  }

  private g(): NativeGroup {
    if (!this.group) throw new Error("process group was destroyed");
    return this.group;
  }

  /**
   * Reduces each tensor in place across ranks. (c10d reads a list as one tensor per device, so
   * each tensor is its own collective here; concatenate small ones first to save round trips.)
   */
  allReduce(tensors: readonly T.Tensor[], op: ReduceOp = "sum"): Work {
    if (this.worldSize === 1) return new Work(undefined, () => undefined);
    return this.work(
      "allreduce",
      tensors.map((t) => native.allreduce(this.g(), [t.native], op)),
      () => undefined,
    );
  }

  /** Every rank's `input`, in rank order (new tensors, same shape as input). */
  allGather(input: T.Tensor): Work<T.Tensor[]> {
    const outs = Array.from({ length: this.worldSize }, () =>
      T.empty(input.shape, { dtype: input.dtype, device: input.device }),
    );
    return this.gather(outs, input, () => outs);
  }

  /**
   * Every rank's `input` into `outputs` (one tensor per rank, each input's shape; views of a larger
   * buffer are fine), so a sharded buffer can be reassembled in place.
   */
  allGatherInto(outputs: readonly T.Tensor[], input: T.Tensor): Work {
    if (outputs.length !== this.worldSize)
      throw new Error(`allGatherInto: need ${this.worldSize} outputs, got ${outputs.length}`);
    return this.gather(outputs, input, () => undefined);
  }

  private gather<R>(outputs: readonly T.Tensor[], input: T.Tensor, finish: () => R): Work<R> {
    if (this.worldSize === 1) {
      outputs[0]!.copy_(input);
      return new Work(undefined, finish);
    }
    const handle = native.allgather(
      this.g(),
      outputs.map((t) => t.native),
      input.native,
    );
    return this.work("allgather", handle, finish);
  }

  /** Copies rank `root`'s tensors into everyone's (one collective per tensor). */
  broadcast(tensors: readonly T.Tensor[], root = 0): Work {
    if (this.worldSize === 1) return new Work(undefined, () => undefined);
    return this.work(
      "broadcast",
      tensors.map((t) => native.broadcast(this.g(), [t.native], root)),
      () => undefined,
    );
  }

  /**
   * output = op over ranks of inputs[this.rank] (inputs: one tensor per rank, each output's shape).
   * Gloo has no reduce-scatter: there it all-reduces the stacked inputs and keeps this rank's part
   * (same result, world-size times the traffic).
   */
  reduceScatter(output: T.Tensor, inputs: readonly T.Tensor[], op: ReduceOp = "sum"): Work {
    if (inputs.length !== this.worldSize)
      throw new Error(`reduceScatter: need ${this.worldSize} inputs, got ${inputs.length}`);
    if (this.worldSize === 1) {
      output.copy_(inputs[0]!);
      return new Work(undefined, () => undefined);
    }
    if (this.backend === "nccl") {
      return this.work(
        "reduceScatter",
        native.reduceScatter(
          this.g(),
          output.native,
          inputs.map((t) => t.native),
          op,
        ),
        () => undefined,
      );
    }
    const stacked = T.stack([...inputs]);
    const work = native.allreduce(this.g(), [stacked.native], op);
    return this.work("reduceScatter", work, () => {
      const mine = stacked.select(0, this.rank);
      output.copy_(mine);
      mine.dispose();
      stacked.dispose();
    });
  }

  barrier(): Work {
    if (this.worldSize === 1) return new Work(undefined, () => undefined);
    return this.work("barrier", native.barrier(this.g()), () => undefined);
  }

  destroy(): void {
    if (this.group) native.groupDestroy(this.group);
    this.group = undefined;
  }
}
