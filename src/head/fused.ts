// The fused chunked head: PartialFC's step (same sampling, margin, distributed softmax and
// gradients) whose memory is its state. The shard is visited in blocks of `chunk` classes:
//   pass 1: each block's logits (centres normalised per block) feed a streaming row (max, sum of
//           exp) and the target logit; one all-reduce of each makes them global, giving the loss;
//   pass 2: each block's logits are recomputed, turned into (p − onehot)/N and pushed through the
//           margin and clamp: the block's product with the centres adds to the gathered features'
//           gradient, its product with the features is the block's weight gradient, which goes
//           straight into the optimizer's update of those rows (SGD.stepRows).
// So no [N, C] logits, normalised copy of the shard or dense weight gradient exists: beyond the
// weights and momentum, a step holds O(N × chunk) (and O(N × D)) working memory.
//
// The update can only run in pass 2 when nothing can skip the step (no loss scaling) and the step
// has one micro-batch (`stepWith`). Otherwise pass 2 computes the feature gradient alone and
// keeps the micro-batch's O(N × D) inputs and row statistics; step() then recomputes each block
// for every pending micro-batch, sums their gradients and updates the rows: a skipped step
// (discarded by zeroGrad) leaves weights and momentum untouched.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { type ProcessGroup } from "../distributed/index.ts";
import {
  type HeadOptimizer,
  type HeadOptions,
  type HeadStepOptions,
  PartialFC,
  surrogate,
  unitGradToWeight,
  unitRows,
} from "./partial-fc.ts";

/** What the fused head needs of its optimizer (src/optim SGD): a step delivered in row blocks. */
export interface RowOptimizer extends HeadOptimizer {
  stepRows(
    p: Tensor,
    rows: (update: (start: number, count: number, grad: Tensor, at?: Tensor) => void) => void,
  ): void;
}

export interface FusedHeadOptions extends HeadOptions {
  /** Classes per block (default: blockClasses(global batch)). */
  chunk?: number;
}

/** The default block: 2^21 logits (8 MB in fp32) whatever the global batch N, 256 to 8192 classes. */
export function blockClasses(globalBatch: number): number {
  return Math.min(8192, Math.max(256, Math.floor(2 ** 21 / globalBatch)));
}

/**
 * Bytes a rank's fused head holds at its peak (fp32, full softmax: the largest case): the shard
 * and its momentum, plus working memory — a few [N, D] tensors of the gathered batch, a block's
 * [N, chunk] logits, softmax and gradient with autograd's copies, and a block's [chunk, D] unit
 * centres, gradient and update temporaries. The constants are counted from the code and checked
 * by bench/head.bench.ts part (b).
 */
export function fusedHeadBytes(o: {
  numClasses: number;
  embeddingSize: number;
  worldSize: number;
  globalBatch: number;
  chunk?: number;
}): { state: number; working: number; total: number } {
  const rows = Math.ceil(o.numClasses / o.worldSize);
  const n = o.globalBatch;
  const d = o.embeddingSize;
  const chunk = Math.min(o.chunk ?? blockClasses(n), rows);
  const state = 2 * rows * d * 4;
  const working = 4 * (6 * n * d + 8 * n * chunk + 6 * chunk * d);
  return { state, working, total: state + working };
}

/** One micro-batch's inputs to the weight gradient, with its global softmax statistics. */
interface Pass {
  /** Normalised gathered embeddings [N, D] (detached). */
  xHat: Tensor;
  /** Each row's label in the sampled set, −1 off this rank. */
  local: Tensor;
  /** Sorted sampled shard rows (undefined: the whole shard), and the same as numbers. */
  index: Tensor | undefined;
  indexRows: number[] | undefined;
  /** Global row max and sum of exp(logit − max), [N, 1]. */
  max: Tensor;
  sum: Tensor;
  /** gradScale / N: the factor of (p − onehot). */
  scale: number;
  loss: Tensor;
  /** The logits' dtype in pass 1 (fp32, or autocast's): every later pass computes in it too. */
  dtype: T.DType;
}

/** A block of shard rows and its columns of the sampled set. */
interface Block {
  start: number;
  rows: number;
  /** First column of the sampled set in the block and how many. */
  col: number;
  cols: number;
  /** The sampled rows' positions in the block (undefined: all of them). */
  within: Tensor | undefined;
}

export class FusedPartialFC extends PartialFC {
  /** Classes per block; undefined: blockClasses(global batch). */
  readonly chunk: number | undefined;
  #pending: Pass[] = [];

  constructor(group: ProcessGroup, o: FusedHeadOptions) {
    super(group, o);
    this.chunk = o.chunk;
    if (o.chunk !== undefined && !(Number.isInteger(o.chunk) && o.chunk > 0))
      throw new Error(`head.chunk must be a positive integer, got ${o.chunk}`);
  }

  override forward(localEmbeddings: Tensor, localLabels: Tensor, o: HeadStepOptions = {}): Tensor {
    if (o.stepWith !== undefined) rowOptimizer(o.stepWith);
    const [lossValue, gradLocal] = T.scope(() => {
      const { x, y, b, d } = this.gather(localEmbeddings, localLabels);
      const n = x.size(0);
      const { index, local } = T.noGrad(() => this.sample(y));
      const xLeaf = x.requiresGrad_();
      const xHatGraph = T.normalize(xLeaf);
      const xHat = xHatGraph.detach();
      const pass = T.noGrad(() => this.#statistics(xHat, local, index, n, (o.gradScale ?? 1) / n));
      const gxHat = T.zeros([n, d], { device: this.device });
      if (o.stepWith === undefined) {
        T.noGrad(() => this.#blocks(n, pass, (blk) => void this.#blockGradient(pass, blk, gxHat, false)));
        this.#pending.push(keepPass(pass));
      } else {
        rowOptimizer(o.stepWith).stepRows(this.weight, (update) =>
          this.#blocks(n, pass, (blk) => {
            const gw = this.#blockGradient(pass, blk, gxHat, true)!;
            update(blk.start, blk.rows, gw, blk.within);
          }),
        );
      }
      const [gx] = T.grad([xHatGraph], [xLeaf], [gxHat]);
      return [pass.loss, this.featureGradient(gx!, b, d)];
    });
    return surrogate(localEmbeddings, lossValue, gradLocal);
  }

  /** Recomputes the pending micro-batches' weight gradient block by block into the update. */
  override step(opt: HeadOptimizer): void {
    const passes = this.#pending;
    if (passes.length === 0) return;
    this.#pending = [];
    try {
      const n = Math.max(...passes.map((p) => p.xHat.size(0)));
      rowOptimizer(opt).stepRows(this.weight, (update) =>
        this.#blocks(n, undefined, (blk) => {
          const g = T.zeros([blk.rows, this.o.embeddingSize], { device: this.device });
          for (const p of passes) {
            const own = this.#blockOf(p, blk.start, blk.rows);
            const gw = this.#blockGradient(p, own, undefined, true)!;
            if (own.within === undefined) g.add_(gw);
            else g.indexPut_([own.within], gw, true);
          }
          update(blk.start, blk.rows, g);
        }),
      );
    } finally {
      for (const p of passes) disposePass(p);
    }
  }

  override zeroGrad(): void {
    super.zeroGrad();
    for (const p of this.#pending) disposePass(p);
    this.#pending = [];
  }

  /** The pending micro-batches' losses: finite exactly when their weight gradients are. */
  override gradientsToCheck(): Tensor[] {
    return [...super.gradientsToCheck(), ...this.#pending.map((p) => p.loss)];
  }

  override dispose(): void {
    this.zeroGrad();
    super.dispose();
  }

  /** Pass 1: streaming row (max, sum) and target logit over the blocks, made global: the loss. */
  #statistics(xHat: Tensor, local: Tensor, index: Tensor | undefined, n: number, scale: number): Pass {
    const dev = { device: this.device };
    const pass: Pass = {
      xHat,
      local,
      index,
      indexRows: index?.toArray(),
      max: T.full([n, 1], -Infinity, dev),
      sum: T.zeros([n, 1], dev),
      scale,
      loss: T.scalarTensor(0, dev),
      dtype: T.noGrad(() => T.linear(xHat.narrow(0, 0, 1), this.weight.detach().narrow(0, 0, 1)).dtype),
    };
    const target = T.zeros([n], dev);
    this.#blocks(n, pass, (blk) => {
      if (blk.cols === 0) return;
      const { logits, rows, cols } = this.#logits(pass, blk);
      const z = logits.float();
      const max = pass.max.maximum(z.amax([1], true));
      pass.sum.mul_(pass.max.sub(max).exp()).add_(z.sub(max).exp().sum([1], true));
      pass.max.copy_(max);
      target.indexPut_([rows], z.index(rows, cols));
    });
    const g = this.group;
    const localMax = pass.max.clone();
    g.allReduce([pass.max], "max").wait();
    pass.sum.mul_(localMax.sub(pass.max).exp());
    g.allReduce([pass.sum], "sum").wait();
    const owned = local.ne(-1);
    target.sub_(pass.max.flatten()).mul_(owned.float());
    g.allReduce([target], "sum").wait();
    pass.loss = pass.sum.flatten().log().sub(target).mean();
    return pass;
  }

  /**
   * Pass 2 on one block: (p − onehot)·scale through the margin and clamp; adds its product with
   * the centres to `gxHat` (when given) and returns (when `weight`) the weight gradient of the
   * block's sampled rows [cols, D] (in the order of `within`).
   */
  #blockGradient(pass: Pass, blk: Block, gxHat: Tensor | undefined, weight: boolean): Tensor | undefined {
    return T.scope(() => {
      if (blk.cols === 0)
        return weight ? T.zeros([0, this.o.embeddingSize], { device: this.device }) : undefined;
      const { logits, cosRaw, rows, cols, unit, norm } = this.#logits(pass, blk, true);
      const dz = T.noGrad(() => {
        const p = logits.detach().float().sub(pass.max).exp().div(pass.sum);
        p.indexPut_([rows, cols], T.scalarTensor(-1, { device: this.device }), true);
        return p.mul_(pass.scale).to(logits.dtype);
      });
      const [gCos] = T.grad([logits], [cosRaw], [dz]);
      return T.noGrad(() => {
        if (gxHat !== undefined) gxHat.add_(gCos!.mm(unit.to(pass.dtype)));
        if (!weight) return undefined;
        return unitGradToWeight(gCos!.transpose(0, 1).mm(pass.xHat.to(pass.dtype)).float(), unit, norm);
      });
    });
  }

  /**
   * A block's margin logits [N, cols] from its centres normalised here; with `graph`, under
   * autograd from the raw cosines (a leaf), for the margin's and clamp's backward.
   */
  #logits(pass: Pass, blk: Block, graph = false) {
    const { unit, norm } = T.noGrad(() => {
      const w =
        blk.within === undefined
          ? this.weight.detach().narrow(0, blk.start, blk.rows)
          : this.weight.detach().indexSelect(0, pass.index!.narrow(0, blk.col, blk.cols));
      return unitRows(w);
    });
    const inBlock = pass.local.ge(blk.col).logicalAnd(pass.local.lt(blk.col + blk.cols));
    const labels = T.where(inBlock, pass.local.sub(blk.col), -1);
    const rows = inBlock.nonzero().flatten();
    const cols = labels.indexSelect(0, rows);
    const cosRaw = T.noGrad(() => T.linear(pass.xHat.to(pass.dtype), unit.to(pass.dtype)));
    const build = (): Tensor => this.margin.apply(cosRaw.clamp(-1, 1), labels);
    if (graph) cosRaw.requiresGrad_();
    const logits = graph ? T.enableGrad(build) : T.noGrad(build);
    return { logits, cosRaw, rows, cols, unit, norm };
  }

  /**
   * Calls `fn` (in a memory scope) on the shard's blocks of `chunk` rows in order, for a global
   * batch of n rows, with the block's columns of `pass`'s sampled set (no pass: all of the block).
   */
  #blocks(n: number, pass: Pass | undefined, fn: (blk: Block) => void): void {
    const { count } = this.shard;
    const chunk = this.chunk ?? blockClasses(n);
    const idx = pass?.indexRows;
    if (idx !== undefined) {
      // Sampled: blocks of `chunk` sampled classes, each over the shard rows from its first
      // sampled row to the next block's. The products stay full-sized whatever the sample rate
      // (blocks of shard rows held rate × chunk classes: at 0.1, ten times the blocks, each a
      // tenth of the work), and the blocks still cover every row once, as SGD.stepRows needs
      // (it updates the unsampled rows too).
      for (let col = 0; col === 0 || col < idx.length; col += chunk) {
        const start = col === 0 ? 0 : idx[col]!;
        const end = col + chunk < idx.length ? idx[col + chunk]! : count;
        T.scope(() => fn(this.#blockOf(pass!, start, end - start)));
      }
      return;
    }
    for (let start = 0; start < count; start += chunk) {
      const rows = Math.min(chunk, count - start);
      T.scope(() => fn({ start, rows, col: start, cols: rows, within: undefined }));
    }
  }

  #blockOf(pass: Pass, start: number, rows: number): Block {
    const idx = pass.indexRows;
    if (idx === undefined) return { start, rows, col: start, cols: rows, within: undefined };
    const col = lowerBound(idx, start);
    const cols = lowerBound(idx, start + rows) - col;
    const within = pass.index!.narrow(0, col, cols).sub(start);
    return { start, rows, col, cols, within };
  }
}

function rowOptimizer(opt: HeadOptimizer): RowOptimizer {
  if (typeof (opt as Partial<RowOptimizer>).stepRows !== "function")
    throw new Error(
      "head.fused: the head's optimizer must be SGD (optim.name 'sgd'), which updates in row blocks",
    );
  return opt as RowOptimizer;
}

/** First position in the sorted `a` whose value is ≥ v. */
function lowerBound(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function passTensors(p: Pass): Tensor[] {
  return [p.xHat, p.local, p.max, p.sum, p.loss, ...(p.index ? [p.index] : [])];
}

function keepPass(p: Pass): Pass {
  for (const t of passTensors(p)) t.keep();
  return p;
}

function disposePass(p: Pass): void {
  for (const t of passTensors(p)) t.dispose();
}
