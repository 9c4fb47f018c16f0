// Data parallelism for the backbone: parameters broadcast from rank 0 at start, gradients
// averaged over ranks in buckets. With libtorch 1.x this is c10d's Reducer (DDP's engine): each
// bucket's all-reduce starts from an autograd hook as soon as its gradients exist, overlapping
// the rest of the backward pass. Elsewhere, and for bf16 compression, buckets are all-reduced
// after backward instead. Gradients end up as the mean over ranks, as with PyTorch's DDP.
import * as T from "../torch/index.ts";
import { native, type NativeReducer } from "../torch/native.ts";
import { type ProcessGroup, type Work } from "./group.ts";

/** DDP's bucket_cap_mb default: the all-reduce bucket (and ZeRO's) unless the config says otherwise. */
export const DEFAULT_BUCKET_CAP_MB = 25;

export interface DataParallelOptions {
  /** Bucket size in MiB (DDP's bucket_cap_mb; default DEFAULT_BUCKET_CAP_MB). */
  bucketCapMB?: number;
  /** Gradient communication precision: the challenge sent fp16 gradients. */
  compress?: T.AmpMode;
  /** Force the post-backward path even when the Reducer is available. */
  overlap?: boolean;
}

/** Why bf16 gradient compression is refused on Gloo (the config check and the wire say it). */
export const GLOO_NO_BF16 =
  "bf16 needs NCCL (CUDA): Gloo, the CPU backend, has no bf16 all-reduce in this libtorch; " +
  "use 'fp16' (the same 2 bytes per gradient on the wire) or 'none'";

/** The dtype gradients travel in for a `compress` setting over `group`'s backend. */
export function wireDtype(
  compress: DataParallelOptions["compress"],
  group: Pick<ProcessGroup, "backend">,
): "f32" | "f16" | "bf16" {
  if (compress === "bf16" && group.backend === "gloo") throw new Error(`dist.compress: ${GLOO_NO_BF16}`);
  return compress === "fp16" ? "f16" : compress === "bf16" ? "bf16" : "f32";
}

export class DataParallel {
  private readonly reducer: NativeReducer | undefined;
  private readonly capBytes: number;
  readonly overlapped: boolean;

  constructor(
    readonly group: ProcessGroup,
    readonly params: readonly T.Tensor[],
    private readonly o: DataParallelOptions = {},
  ) {
    wireDtype(o.compress, group); // refuses what the backend cannot carry before any step runs
    this.capBytes = (o.bucketCapMB ?? DEFAULT_BUCKET_CAP_MB) * 1024 * 1024;
    const canOverlap =
      group.worldSize > 1 &&
      group.backend !== "none" &&
      native.reducerCreate !== undefined &&
      o.compress !== "bf16";
    this.overlapped = canOverlap && o.overlap !== false;
    if (this.overlapped) {
      this.reducer = native.reducerCreate!(
        group.nativeGroup(),
        params.map((p) => p.native),
        this.capBytes,
        Math.min(this.capBytes, 1024 * 1024),
        o.compress === "fp16",
      );
    }
  }

  /** Copies rank 0's parameters (and any extra tensors, e.g. BN buffers) to every rank. */
  broadcastFromRoot(extra: readonly T.Tensor[] = []): void {
    if (this.group.worldSize === 1) return;
    T.noGrad(() => this.group.broadcast([...this.params, ...extra], 0).wait());
  }

  /** Call before a backward whose gradients should be synchronised (skip it to accumulate locally). */
  beforeBackward(): void {
    if (this.reducer) native.reducerPrepare!(this.reducer);
  }

  /** Call after that backward: averages gradients unless the Reducer already did during it. */
  afterBackward(): void {
    if (this.group.worldSize === 1 || this.reducer) return;
    this.allReduceGradients();
  }

  /** Bucketed mean of every parameter's gradient over ranks (post-backward path). */
  allReduceGradients(): void {
    const world = this.group.worldSize;
    const capElems = this.capBytes / 4;
    const withGrad = this.params.filter((p) => p.requiresGrad);
    const pending: { work: Work; flat: T.Tensor; members: T.Tensor[] }[] = [];
    T.noGrad(() => {
      let bucket: T.Tensor[] = [];
      let size = 0;
      const flush = (): void => {
        if (bucket.length === 0) return;
        const grads = bucket.map((p) => {
          const g = p.grad;
          if (!g) throw new Error("allReduceGradients: a parameter has no gradient (was backward run?)");
          return g;
        });
        let flat = T.cat(grads.map((g) => g.flatten()));
        const wire = wireDtype(this.o.compress, this.group);
        if (wire !== "f32") {
          const c = flat.to(wire);
          flat.dispose();
          flat = c;
        }
        pending.push({ work: this.group.allReduce([flat]), flat, members: bucket });
        bucket = [];
        size = 0;
      };
      for (let i = withGrad.length - 1; i >= 0; i--) {
        const p = withGrad[i]!;
        bucket.push(p);
        size += p.numel;
        if (size >= capElems) flush();
      }
      flush();
      for (const { work, flat, members } of pending) {
        work.wait();
        const mean = flat.float().div(world);
        flat.dispose();
        let offset = 0;
        for (const p of members) {
          const part = mean.narrow(0, offset, p.numel).view(...p.shape);
          p.grad!.copy_(part);
          part.dispose();
          offset += p.numel;
        }
        mean.dispose();
      }
    });
  }

  destroy(): void {
    if (this.reducer) native.reducerDestroy!(this.reducer);
  }
}
