// ZeRO for the data-parallel backbone: the optimizer state (stage 1), and the reduced gradients
// (stage 2), live only on the rank that owns them; the parameters stay replicated.
//
// Layout. Each parameter group's parameters, in order, are laid end to end and cut into buckets of
// about `bucketCapMB`; a bucket of n elements is padded to a multiple of the world size W and split
// into W equal pieces, rank r owning piece r of every bucket. The parameters are moved into one
// flat buffer per bucket (each becomes a view of it, as FSDP's flat parameters), so rank r's piece
// is a view too: the wrapped optimizer updates the parameters' own memory, with no second copy of
// the weights. Element-wise rules (SGD, AdamW) are exact on pieces as they are; a layer-wise rule
// (LARS) gets the pieces' layout (`useLayout`) and completes its per-layer norms with one small
// all-reduce per step.
//
// A step (after backward):
//   stage 1  gradients were all-reduced as usual; each rank copies out its pieces;
//   stage 2  each bucket's summed gradient is reduce-scattered straight into the owners' pieces and
//            the full gradients are freed, bucket by bucket;
//   then     optional clipping by the global norm (one scalar all-reduce), the inner optimizer's
//            step on the pieces, and one all-gather per bucket that writes the updated values back
//            into every rank's parameters.
// Checkpoints store each piece's state with its range in "global coordinates" (offsets into all
// parameters laid end to end, padding excluded), so they load on any world size.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { DEFAULT_BUCKET_CAP_MB, type ProcessGroup, wireDtype } from "../distributed/index.ts";
import { type LayerLayout, type Stretch } from "./layout.ts";
import { type Optimizer, type OptimizerStateDict } from "./optimizer.ts";

type Hyper = { lr: number } & Record<string, number | boolean>;
export type ZeroInner = Optimizer<Hyper>;

export interface ZeroOptions {
  stage: 1 | 2;
  /** Bucket size in MiB of fp32 elements (as DataParallel's). */
  bucketCapMB?: number;
  /** Stage 2: precision of the reduce-scatter (the all-reduce's `compress`). */
  compress?: T.AmpMode;
}

interface Bucket {
  group: number;
  params: Tensor[];
  /** Global offset of the bucket's first element. */
  start: number;
  numel: number;
  /** Piece length: ceil(numel / W). */
  piece: number;
  /** [piece·W]: the bucket's parameters end to end, then zero padding. */
  flat: Tensor;
  /** flat's piece of this rank (a view), optimized by the inner optimizer. */
  shard: Tensor;
}

const SET_STORAGE = T.opId("aten::set_.source_Tensor");

/** One piece's optimizer state as saved: its global range and a tensor per state name. */
const META = "mfr.zero";
interface SavedMeta {
  stage: number;
  worldSize: number;
  totalNumel: number;
  ranges: [number, number][];
  steps: number[];
  groups: Record<string, number | boolean>[];
}

export class ZeroOptimizer {
  readonly inner: ZeroInner;
  readonly #buckets: Bucket[] = [];
  readonly #totalNumel: number;
  /** Buckets whose gradients reached the pieces this step. */
  readonly #reduced = new Set<Bucket>();
  /** Buckets reduce-scattered by reduceReady (during backward) in the latest step. */
  streamedBuckets = 0;
  #newStep = true;

  /**
   * groups: the backbone's parameter groups (a parameter that never needs a gradient is left out);
   * make: builds the inner optimizer over the shard parameters, one group per given group.
   */
  constructor(
    readonly group: ProcessGroup,
    groups: readonly { params: readonly Tensor[]; options?: Partial<Hyper> }[],
    make: (shardGroups: { params: Tensor[]; options?: Partial<Hyper> }[]) => ZeroInner,
    private readonly o: ZeroOptions,
  ) {
    wireDtype(o.compress, group); // refuses what the backend cannot carry before any step runs
    const W = group.worldSize;
    const capElems = Math.max(1, Math.floor(((o.bucketCapMB ?? DEFAULT_BUCKET_CAP_MB) * 1024 * 1024) / 4));
    let offset = 0;
    groups.forEach((g, gi) => {
      let members: Tensor[] = [];
      let size = 0;
      const flush = (): void => {
        if (members.length === 0) return;
        const piece = Math.ceil(size / W);
        const { flat, shard } = T.noGrad(() =>
          T.scope(() => {
            const flat = T.zeros([piece * W], { device: members[0]!.device });
            let at = 0;
            for (const p of members) {
              const view = flat.narrow(0, at, p.numel).view(...p.shape);
              view.copy_(p);
              // p now lives in flat: same tensor object (modules, autograd and checkpoints are
              // unaffected), new storage.
              T.wrap(T.callOp(SET_STORAGE, p, view)); // (a second handle on p, freed by the scope)
              at += p.numel;
            }
            return { flat: flat.keep(), shard: flat.narrow(0, group.rank * piece, piece).keep() };
          }),
        );
        this.#buckets.push({ group: gi, params: members, start: offset, numel: size, piece, flat, shard });
        offset += size;
        members = [];
        size = 0;
      };
      for (const p of g.params) {
        if (!p.requiresGrad) continue;
        if (p.dtype !== "f32") throw new Error(`ZeRO: parameters must be float32, got ${p.dtype}`);
        members.push(p);
        size += p.numel;
        if (size >= capElems) flush();
      }
      flush();
    });
    this.#totalNumel = offset;
    this.inner = make(
      groups.map((g, gi) => ({
        params: this.#buckets.filter((b) => b.group === gi).map((b) => b.shard),
        options: g.options,
      })),
    );
    this.inner.useLayout(this.#layout());
  }

  /** Every parameter a layer; each piece's stretches of them (the padding belongs to none). */
  #layout(): LayerLayout {
    const params = this.#buckets.flatMap((b) => b.params);
    const index = new Map(params.map((p, i) => [p, i]));
    const stretches = new Map<Tensor, Stretch[]>();
    for (const b of this.#buckets) {
      const [lo, hi] = this.#ownRange(b);
      const own: Stretch[] = [];
      this.#pieces(b, lo, hi, (p, _at, into, len) => own.push({ layer: index.get(p)!, at: into, len }));
      stretches.set(b.shard, own);
    }
    return {
      ndims: params.map((p) => p.ndim),
      stretches: (p) => stretches.get(p) ?? [],
      allReduce: (t) => this.group.allReduce([t]).wait(),
    };
  }

  get stage(): 1 | 2 {
    return this.o.stage;
  }

  get numBuckets(): number {
    return this.#buckets.length;
  }

  /** This rank's [lo, hi) of bucket b in the bucket's own coordinates, padding cut off. */
  #ownRange(b: Bucket): [number, number] {
    const lo = Math.min(b.numel, this.group.rank * b.piece);
    return [lo, Math.min(b.numel, lo + b.piece)];
  }

  /** Calls fn for every stretch of parameter p that falls in [lo, hi) of bucket b. */
  #pieces(
    b: Bucket,
    lo: number,
    hi: number,
    fn: (p: Tensor, at: number, into: number, len: number) => void,
  ): void {
    let off = 0;
    for (const p of b.params) {
      const a = Math.max(lo, off);
      const z = Math.min(hi, off + p.numel);
      if (a < z) fn(p, a - off, a - lo, z - a);
      off += p.numel;
    }
  }

  /** Drops every gradient: the parameters' and the pieces'. */
  zeroGrad(): void {
    this.#reduced.clear();
    this.#newStep = true;
    for (const b of this.#buckets) {
      b.shard.grad = undefined;
      for (const p of b.params) p.grad = undefined;
    }
  }

  /**
   * Moves the gradients into the pieces. Stage 1: the parameters hold the averaged gradient (the
   * DataParallel all-reduce ran). Stage 2: they hold this rank's own gradient; the mean over ranks
   * arrives by reduce-scatter and the full gradients are freed. Buckets already reduced by
   * `reduceReady` are skipped.
   */
  reduceGradients(): void {
    for (const b of this.#buckets) {
      if (!this.#reduced.has(b)) this.#reduceBucket(b);
      else if (b.params.some((p) => p.grad !== undefined)) {
        throw new Error(
          "ZeRO-2: a parameter received gradient after its bucket was reduced (the backbone's parameters are not in forward order)",
        );
      }
    }
  }

  /**
   * Stage 2, during backward: reduce-scatters (and frees) every bucket, from the last, whose
   * parameters `complete` says have their final gradient, so that the full gradients of the
   * finished part of the network do not wait for the rest of the backward pass. Every rank must
   * call it at the same points.
   */
  reduceReady(complete: (p: Tensor) => boolean): void {
    if (this.o.stage !== 2) return;
    if (this.#newStep) this.streamedBuckets = 0;
    this.#newStep = false;
    for (let i = this.#buckets.length - 1; i >= 0; i--) {
      const b = this.#buckets[i]!;
      if (this.#reduced.has(b)) continue;
      if (!b.params.every(complete)) return;
      this.#reduceBucket(b);
      this.streamedBuckets++;
    }
  }

  #reduceBucket(b: Bucket): void {
    const W = this.group.worldSize;
    this.#reduced.add(b);
    T.noGrad(() =>
      T.scope(() => {
        const device = b.flat.device;
        const g = T.zeros([b.piece], { device });
        if (this.o.stage === 1) {
          const [lo, hi] = this.#ownRange(b);
          this.#pieces(b, lo, hi, (p, at, into, len) => {
            const pg = p.grad;
            if (pg) g.narrow(0, into, len).copy_(pg.view(-1).narrow(0, at, len));
          });
          for (const p of b.params) p.grad = undefined;
        } else {
          const parts = b.params.map((p) => p.grad?.view(-1) ?? T.zeros([p.numel], { device }));
          const pad = b.piece * W - b.numel;
          if (pad > 0) parts.push(T.zeros([pad], { device }));
          let flat = T.cat(parts);
          for (const p of b.params) p.grad = undefined;
          const wire = wireDtype(this.o.compress, this.group);
          if (wire !== "f32") flat = flat.to(wire);
          const out = wire === "f32" ? g : T.empty([b.piece], { dtype: wire, device });
          this.group.reduceScatter(out, flat.split(b.piece, 0)).wait();
          if (out !== g) g.copy_(out);
          g.div_(W);
        }
        b.shard.grad = g;
      }),
    );
  }

  /** The pieces' gradients (after reduceGradients), e.g. for loss-scale unscaling. */
  shardGrads(): Tensor[] {
    const out: Tensor[] = [];
    for (const b of this.#buckets) {
      const g = b.shard.grad;
      if (g) out.push(g);
    }
    return out;
  }

  /**
   * Clips the gradient by its global L2 norm over every rank's pieces (torch's clip_grad_norm_ over
   * the full gradient: padding holds zeros). Returns the norm before clipping.
   */
  clipGradNorm(maxNorm: number): number {
    return T.noGrad(() =>
      T.scope(() => {
        const grads = this.shardGrads();
        const sq = T.stack(grads.map((g) => g.pow(2).sum()))
          .sum()
          .reshape(1);
        this.group.allReduce([sq]).wait();
        const total = Math.sqrt(sq.item());
        const coef = maxNorm / (total + 1e-6);
        if (coef < 1) for (const g of grads) g.mul_(coef);
        return total;
      }),
    );
  }

  /** The inner optimizer's step on the pieces, then every rank's parameters from the owners. */
  step(): void {
    this.inner.step();
    if (this.group.worldSize === 1) return;
    T.noGrad(() => {
      for (const b of this.#buckets) {
        // The input is a copy: the output views include this rank's own piece.
        T.scope(() => this.group.allGatherInto(b.flat.split(b.piece, 0), b.shard.clone()).wait());
      }
    });
  }

  /** This rank's optimizer state as a safetensors payload: one tensor per piece and state name. */
  shardState(): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
    const sd = this.inner.stateDict();
    const tensors = new Map<string, Tensor>();
    const steps: number[] = [];
    const ranges: [number, number][] = [];
    this.#buckets.forEach((b, i) => {
      const [lo, hi] = this.#ownRange(b);
      ranges.push([b.start + lo, b.start + hi]);
      steps.push(sd.steps[String(i)] ?? 0);
      for (const [k, t] of sd.tensors) {
        const dot = k.indexOf(".");
        if (Number(k.slice(0, dot)) !== i) continue;
        tensors.set(`zero.${i}.${k.slice(dot + 1)}`, t.narrow(0, 0, hi - lo));
      }
    });
    const meta: SavedMeta = {
      stage: this.o.stage,
      worldSize: this.group.worldSize,
      totalNumel: this.#totalNumel,
      ranges,
      steps,
      groups: sd.groups,
    };
    return { tensors, metadata: { [META]: JSON.stringify(meta) } };
  }

  /** The saved ranges of a shard file, checked against this backbone. */
  #savedMeta(source: string, metadata: Record<string, string>): SavedMeta {
    const raw = metadata[META];
    if (raw === undefined) throw new Error(`${source}: not a ZeRO optimizer shard (no '${META}' metadata)`);
    const meta = JSON.parse(raw) as SavedMeta;
    if (meta.totalNumel !== this.#totalNumel) {
      throw new Error(
        `${source}: the optimizer state covers ${meta.totalNumel} parameter elements, this backbone has ${this.#totalNumel}`,
      );
    }
    return meta;
  }

  /**
   * Whether a shard file (known by its metadata alone) holds state of any of this rank's pieces:
   * a rank reads only those files, not every rank's state.
   */
  needsShard(source: string, metadata: Record<string, string>): boolean {
    const own = this.#buckets.map((b) => this.#ownRange(b).map((x) => x + b.start));
    return this.#savedMeta(source, metadata).ranges.some(([a, z]) =>
      own.some(([lo, hi]) => Math.max(a, lo!) < Math.min(z, hi!)),
    );
  }

  /**
   * Loads the pieces' optimizer state from the shard files of a ZeRO checkpoint written by any
   * number of ranks (`files` in any order, each named by `source` in errors; files that hold none
   * of this rank's pieces may be left out). The parameters themselves come from the model's own
   * checkpoint.
   */
  loadShardStates(
    files: readonly { source: string; tensors: Map<string, Tensor>; metadata: Record<string, string> }[],
  ): void {
    const saved = files.map((f) => ({ ...f, meta: this.#savedMeta(f.source, f.metadata) }));
    const first = saved[0];
    if (!first) throw new Error("ZeRO: no optimizer shard files to load");
    const tensors = new Map<string, Tensor>();
    const steps: Record<string, number> = {};
    T.noGrad(() => {
      this.#buckets.forEach((b, i) => {
        const [lo, hi] = this.#ownRange(b);
        const want: [number, number] = [b.start + lo, b.start + hi];
        let covered = 0;
        for (const s of saved) {
          s.meta.ranges.forEach(([a, z], j) => {
            const from = Math.max(a, want[0]);
            const to = Math.min(z, want[1]);
            if (from >= to) return;
            covered += to - from;
            steps[String(i)] = s.meta.steps[j] ?? 0;
            const prefix = `zero.${j}.`;
            for (const [k, t] of s.tensors) {
              if (!k.startsWith(prefix)) continue;
              const key = `${i}.${k.slice(prefix.length)}`;
              let into = tensors.get(key);
              if (!into)
                tensors.set(key, (into = T.zeros([b.piece], { dtype: t.dtype, device: b.flat.device })));
              into.narrow(0, from - want[0], to - from).copy_(t.narrow(0, from - a, to - from));
            }
          });
        }
        if (covered !== want[1] - want[0]) {
          throw new Error(
            `ZeRO: the shard files cover ${covered} of the ${want[1] - want[0]} elements of global range [${want[0]}, ${want[1]}) (a shard file is missing)`,
          );
        }
      });
    });
    const sd: OptimizerStateDict = { tensors, groups: first.meta.groups, steps };
    this.inner.loadStateDict(sd);
    for (const t of tensors.values()) t.dispose();
  }

  dispose(): void {
    for (const b of this.#buckets) {
      b.shard.grad = undefined;
      b.shard.dispose();
      b.flat.dispose(); // the parameters keep the storage alive
    }
  }
}
