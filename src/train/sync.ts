// The backbone's gradient synchronisation and optimizer behind one interface, so the step reads the
// same whatever the parallelism:
//   plain data parallel  gradients all-reduced (c10d's Reducer overlaps it with the last
//                        micro-batch's backward where it can), every rank steps every parameter;
//   ZeRO-1               the same all-reduce, then each rank steps only its pieces (src/optim/zero.ts);
//   ZeRO-2               each bucket's gradient reduce-scattered straight into its owner's piece,
//                        during the checkpoint replays when there are some.
// Each owns the backbone's optimizer, its clipping and its checkpoint state: replicated state is
// saved once by rank 0, sharded state by every rank with global ranges (it loads on any world size).
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { DataParallel, type ProcessGroup } from "../distributed/index.ts";
import {
  type Optimizer,
  ZeroOptimizer,
  clipGradNorm,
  optimizerStateFromTensors,
  optimizerStateToTensors,
} from "../optim/index.ts";

export type AnyOptimizer = Optimizer<{ lr: number } & Record<string, number | boolean>>;
export type ParamGroups = {
  params: Tensor[];
  options?: Partial<{ lr: number } & Record<string, number | boolean>>;
}[];

/** Checkpointed segments waiting for their backward (an iResNet's CheckpointTape). */
export interface Tape {
  backward(onSegmentDone?: (index: number, params: readonly Tensor[] | undefined) => void): void;
  segmentParams(): (readonly Tensor[] | undefined)[];
  clear(): void;
}

/** A safetensors payload, named by its file in errors. */
export interface StateFile {
  source: string;
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

export interface GradientSync {
  /** The optimizer whose learning rate the schedule sets (ZeRO: the one over this rank's pieces). */
  readonly optimizer: AnyOptimizer;
  /** Parameter broadcast at start and the all-reduce (ZeRO-2 uses it for the broadcast only). */
  readonly dp: DataParallel;
  readonly zero: ZeroOptimizer | undefined;
  broadcastFromRoot(extra?: readonly Tensor[]): void;
  /** Before each micro-batch's loss backward; `last`: the one whose gradients are synchronised. */
  beforeBackward(last: boolean): void;
  /** After loss backward: replays checkpointed segments (`autocast` wraps the replay). */
  replay(tape: Tape, last: boolean, autocast: (f: () => void) => void): void;
  /** After the last micro-batch: every rank's gradients combined. */
  afterBackward(): void;
  /** The gradients this rank steps (ZeRO: its pieces'), e.g. for loss-scale unscaling. */
  grads(): Tensor[];
  /** Clips by the global norm over the whole backbone gradient. */
  clipGradNorm(maxNorm: number): void;
  step(): void;
  zeroGrad(): void;
  /** Whether every rank saves its own state (else rank 0 saves it, beside the weights). */
  readonly sharded: boolean;
  stateDict(): Omit<StateFile, "source">;
  /** Whether a saved state file holds any of this rank's state (a rank reads only those). */
  needsState(file: string, metadata: Record<string, string>): boolean;
  loadStateDict(files: readonly StateFile[]): void;
  dispose(): void;
}

export interface SyncOptions {
  zero: 0 | 1 | 2;
  compress?: T.AmpMode;
  bucketCapMB?: number;
  /** Let the Reducer overlap the all-reduce with backward (callers turn it off for checkpointing). */
  overlap: boolean;
}

/** The sync for `o.zero` over the backbone's trainable parameters. */
export function createGradientSync(
  group: ProcessGroup,
  groups: ParamGroups,
  make: (groups: ParamGroups) => AnyOptimizer,
  o: SyncOptions,
): GradientSync {
  const params = groups.flatMap((g) => g.params).filter((p) => p.requiresGrad);
  const zero =
    o.zero === 0
      ? undefined
      : new ZeroOptimizer(group, groups, make, {
          stage: o.zero,
          bucketCapMB: o.bucketCapMB,
          compress: o.compress,
        });
  // After ZeRO, which moves the parameters into its flat buffers. ZeRO-2 reduce-scatters instead
  // of all-reducing, so its Reducer would only be in the way.
  const dp = new DataParallel(group, params, {
    compress: o.compress,
    bucketCapMB: o.bucketCapMB,
    overlap: o.overlap && o.zero !== 2,
  });
  return zero ? new ZeroSync(dp, zero, params) : new DataParallelSync(dp, make(groups), params);
}

class DataParallelSync implements GradientSync {
  readonly zero = undefined;
  readonly sharded = false;

  constructor(
    readonly dp: DataParallel,
    readonly optimizer: AnyOptimizer,
    readonly params: readonly Tensor[],
  ) {}

  broadcastFromRoot(extra: readonly Tensor[] = []): void {
    this.dp.broadcastFromRoot(extra);
  }
  beforeBackward(last: boolean): void {
    if (last) this.dp.beforeBackward();
  }
  replay(tape: Tape, _last: boolean, autocast: (f: () => void) => void): void {
    autocast(() => tape.backward());
  }
  afterBackward(): void {
    this.dp.afterBackward();
  }
  grads(): Tensor[] {
    return this.params.map((p) => p.grad).filter((g): g is Tensor => g !== undefined);
  }
  clipGradNorm(maxNorm: number): void {
    T.scope(() => clipGradNorm(this.params, maxNorm));
  }
  step(): void {
    this.optimizer.step();
  }
  zeroGrad(): void {
    this.optimizer.zeroGrad();
  }
  stateDict(): Omit<StateFile, "source"> {
    return optimizerStateToTensors(this.optimizer.stateDict());
  }
  needsState(): boolean {
    return true;
  }
  loadStateDict(files: readonly StateFile[]): void {
    if (files.length !== 1) throw new Error(`optimizer state: expected rank 0's file, got ${files.length}`);
    this.optimizer.loadStateDict(optimizerStateFromTensors(files[0]!));
  }
  dispose(): void {
    this.dp.destroy();
  }
}

class ZeroSync implements GradientSync {
  readonly sharded = true;
  readonly #index: Map<Tensor, number>;

  constructor(
    readonly dp: DataParallel,
    readonly zero: ZeroOptimizer,
    params: readonly Tensor[],
  ) {
    this.#index = new Map(params.map((p, i) => [p, i]));
  }

  get optimizer(): AnyOptimizer {
    return this.zero.inner;
  }
  broadcastFromRoot(extra: readonly Tensor[] = []): void {
    this.dp.broadcastFromRoot(extra);
  }
  beforeBackward(last: boolean): void {
    if (last && this.zero.stage === 1) this.dp.beforeBackward();
  }
  replay(tape: Tape, last: boolean, autocast: (f: () => void) => void): void {
    if (last && this.zero.stage === 2) this.#replayStreaming(tape, autocast);
    else autocast(() => tape.backward());
  }
  afterBackward(): void {
    if (this.zero.stage === 1) this.dp.afterBackward();
    this.zero.reduceGradients();
  }
  grads(): Tensor[] {
    return this.zero.shardGrads();
  }
  clipGradNorm(maxNorm: number): void {
    this.zero.clipGradNorm(maxNorm);
  }
  step(): void {
    this.zero.step();
  }
  zeroGrad(): void {
    this.zero.zeroGrad();
  }
  stateDict(): Omit<StateFile, "source"> {
    return this.zero.shardState();
  }
  needsState(file: string, metadata: Record<string, string>): boolean {
    return this.zero.needsShard(file, metadata);
  }
  loadStateDict(files: readonly StateFile[]): void {
    this.zero.loadShardStates(files);
  }
  dispose(): void {
    this.dp.destroy();
    this.zero.dispose();
  }

  /**
   * ZeRO-2 with checkpointing: the replays run last segment first, and the backbone's parameters
   * are in forward order, so after each replay every parameter from that segment's first one on
   * has its final gradient: those buckets are reduce-scattered and their full gradients freed
   * while the rest of the backward pass runs (ZeroOptimizer checks the order assumption).
   */
  #replayStreaming(tape: Tape, autocast: (f: () => void) => void): void {
    const index = this.#index;
    const segments = tape.segmentParams();
    if (segments.some((s) => s === undefined || s.some((p) => !index.has(p)))) {
      autocast(() => tape.backward());
      return;
    }
    const firstOf = (ps: readonly Tensor[]): number => Math.min(...ps.map((p) => index.get(p)!));
    const lastOf = (ps: readonly Tensor[]): number => Math.max(...ps.map((p) => index.get(p)!));
    let frontier = segments.length ? Math.max(...segments.map((s) => lastOf(s!))) + 1 : 0;
    this.zero.reduceReady((p) => index.get(p)! >= frontier);
    autocast(() =>
      tape.backward((_, params) => {
        frontier = Math.min(frontier, firstOf(params!));
        this.zero.reduceReady((p) => index.get(p)! >= frontier);
      }),
    );
  }
}
