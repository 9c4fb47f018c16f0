// The model-parallel margin-softmax head (arcface_torch's PartialFC_V2 + CombinedMarginLoss).
//
// Every rank owns a contiguous shard of the class centres. A forward step:
//   1. all-gather the (detached) embeddings and labels of the global batch;
//   2. optionally sample the shard (Partial FC): the positive classes of the global batch plus
//      random negatives, as arcface_torch (top-k of a random permutation, positives forced in);
//   3. logits = normalize(x)·normalize(w)ᵀ clamped to [−1, 1], margin on the target on its owner;
//   4. distributed softmax: all-reduce(max), all-reduce(sum of exp), target probability picked on
//      its owner and all-reduced; loss = mean over the global batch of −log p_target;
//   5. the gradient of that loss w.r.t. the logits, (p − onehot)/N, is pushed through the local
//      graph (margin, clamp, matmul, normalisation) in the same call, giving this shard's weight
//      gradient (kept local, never all-reduced) and a partial gradient for every gathered row;
//      the partial row gradients are summed over ranks and scattered back to their owners.
// c10d collectives carry no autograd, so forward returns the loss joined to the local embeddings
// through a surrogate whose gradient is the precomputed feature gradient.
//
// Gradient convention: the data-parallel backbone (src/distributed DataParallel) AVERAGES gradients over
// ranks, like DDP. So that the backbone ends with the true gradient of the mean global-batch loss,
// the feature gradient handed to autograd is W × ∂L/∂(local embeddings) by default
// (`featureGradScale: "world"`, what arcface_torch does in AllGather's backward). With "true" it
// is ∂L/∂(local embeddings) itself (for use without gradient averaging). The shard's weight
// gradient is always the true ∂L/∂w.
//
// Partial FC and the optimizer: unsampled rows get an exact zero gradient, but the shard weight is
// one parameter, so the optimizer still visits them: SGD's weight decay shrinks them and momentum
// keeps moving them along their old velocity — exactly as arcface_torch's PartialFC_V2, whose
// sampled weight is an index of the full parameter.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { type ProcessGroup } from "../distributed/index.ts";
import { CombinedMargin, type CombinedMarginOptions } from "../losses/index.ts";
import { type ClassShard, classShard, initialShardWeight } from "./shard.ts";

/** F.normalize's eps. */
const EPS = 1e-12;

export interface HeadOptions {
  numClasses: number;
  embeddingSize: number;
  /** Fraction of each shard's classes used per step (Partial FC), in (0, 1]. */
  sampleRate: number;
  margin: CombinedMargin | CombinedMarginOptions;
  /** "world" (default): feature gradient × world size, to undo DataParallel's averaging. */
  featureGradScale?: "world" | "true";
  /** Seed of the initial centres (the same centres for any world size). */
  seed?: number;
  /** Where the shard lives (default "cpu"); the centres are drawn on the CPU, then moved. */
  device?: string;
}

export class PartialFC {
  /** Classes over all ranks (this rank holds `shard.count` of them). */
  readonly numClasses: number;
  readonly shard: ClassShard;
  readonly margin: CombinedMargin;
  readonly numSample: number;
  readonly device: string;
  /** This rank's centres [shard.count, D]: a leaf tensor, its `.grad` accumulated by forward. */
  readonly weight: Tensor;
  /** Global class ids sampled at the last forward (all of the shard when sampleRate is 1). */
  lastSampled: Tensor | undefined;

  constructor(
    readonly group: ProcessGroup,
    protected readonly o: HeadOptions,
  ) {
    if (!(o.sampleRate > 0 && o.sampleRate <= 1)) {
      throw new Error(`head.sampleRate must be in (0, 1], got ${o.sampleRate}`);
    }
    if (!Number.isInteger(o.embeddingSize) || o.embeddingSize < 1) {
      throw new Error(`head.embeddingSize must be a positive integer, got ${o.embeddingSize}`);
    }
    this.numClasses = o.numClasses;
    this.shard = classShard(o.numClasses, group.rank, group.worldSize);
    this.margin = o.margin instanceof CombinedMargin ? o.margin : new CombinedMargin(o.margin);
    this.numSample = Math.floor(o.sampleRate * this.shard.count);
    this.device = o.device ?? "cpu";
    const init = initialShardWeight(this.shard, o.embeddingSize, o.seed ?? 0);
    this.weight = (this.device === "cpu" ? init : T.scope(() => init.to(this.device))).requiresGrad_().keep();
    if (this.weight !== init) init.dispose();
  }

  /**
   * Loss (mean over the global batch, the same value on every rank) under autograd: backward()
   * on it reaches the backbone through `localEmbeddings`; the shard weight's `.grad` is
   * accumulated here (step() applies it). Every rank must pass the same number of rows.
   */
  forward(localEmbeddings: Tensor, localLabels: Tensor, o: HeadStepOptions = {}): Tensor {
    const [lossValue, gradLocal] = T.scope(() => {
      const { x, y, b, d } = this.gather(localEmbeddings, localLabels);
      const n = x.size(0);
      const { index, local } = T.noGrad(() => this.sample(y));
      const xLeaf = x.requiresGrad_();
      // The centres are normalised outside autograd and their gradient taken analytically:
      // ∂/∂w of w/|w| applied to g is (g − ŵ·(g·ŵ))/|w|, two passes over the shard, where
      // autograd's broadcasting backward of normalize takes ~5× the whole matmul on CPU.
      const { unit, norm } = T.noGrad(() =>
        unitRows(index === undefined ? this.weight.detach() : this.weight.indexSelect(0, index)),
      );
      const unitLeaf = unit.requiresGrad_();
      // Drop each [N, C_local] intermediate's handle as soon as the next exists: the autograd graph
      // keeps what backward needs (the clamp's input), nothing else of that size stays alive.
      const cosRaw = T.linear(T.normalize(xLeaf), unitLeaf);
      const cos = cosRaw.clamp(-1, 1);
      cosRaw.dispose();
      const logits = this.margin.apply(cos, local);
      cos.dispose();

      const { loss, dLogits } = T.noGrad(() => distributedSoftmaxCE(this.group, logits.detach(), local, n));
      if (o.gradScale !== undefined && o.gradScale !== 1) dLogits.mul_(o.gradScale);
      const [gx, gUnit] = T.grad([logits], [xLeaf, unitLeaf], [dLogits]);
      logits.dispose();
      dLogits.dispose();
      T.noGrad(() => {
        const gPart = unitGradToWeight(gUnit!, unit, norm);
        let gw = gPart;
        if (index !== undefined) {
          gw = T.zeros(this.weight.shape, { device: this.device });
          gw.indexPut_([index], gPart);
        }
        const prev = this.weight.grad;
        if (prev) {
          prev.add_(gw);
        } else {
          this.weight.grad = gw; // the .grad slot holds its own reference
        }
      });
      return [loss, this.featureGradient(gx!, b, d)];
    });
    return surrogate(localEmbeddings, lossValue, gradLocal);
  }

  /** Applies the step's update to the shard (after forward; skipped steps never call it). */
  step(opt: HeadOptimizer): void {
    opt.step();
  }

  /** Forgets this step's gradients. */
  zeroGrad(): void {
    this.weight.grad = undefined;
  }

  /** Tensors that are finite exactly when the shard's pending gradient is (loss scaling's check). */
  gradientsToCheck(): Tensor[] {
    const gw = this.weight.grad;
    return gw ? [gw] : [];
  }

  /**
   * The global batch (every rank's detached embeddings as fp32, and labels) for this rank's
   * embeddings [b, D] and labels [b]: every rank must pass the same number of rows.
   */
  protected gather(
    localEmbeddings: Tensor,
    localLabels: Tensor,
  ): { x: Tensor; y: Tensor; b: number; d: number } {
    const g = this.group;
    const [b, d] = localEmbeddings.shape as [number, number];
    if (localEmbeddings.ndim !== 2 || d !== this.o.embeddingSize) {
      throw new Error(
        `head.forward: embeddings must be [B, ${this.o.embeddingSize}], got [${localEmbeddings.shape.join(", ")}]`,
      );
    }
    const labelsIn = localLabels.flatten().to("i64");
    if (labelsIn.size(0) !== b)
      throw new Error(`head.forward: ${b} embeddings but ${labelsIn.size(0)} labels`);
    return T.noGrad(() => {
      const feats = g.allGather(localEmbeddings.detach().float().contiguous()).wait();
      const labs = g.allGather(labelsIn.contiguous()).wait();
      return { x: T.cat(feats), y: T.cat(labs), b, d };
    });
  }

  /**
   * This rank's rows [b, D] of the gradient w.r.t. the gathered batch `gx`: each row's gradient
   * is the sum of every shard's partial gradient (reduce-scatter), scaled per featureGradScale.
   */
  protected featureGradient(gx: Tensor, b: number, d: number): Tensor {
    return T.noGrad(() => {
      const out = T.empty([b, d], { device: this.device });
      this.group.reduceScatter(out, gx.split(b, 0)).wait();
      return this.o.featureGradScale === "true" ? out : out.mul_(this.group.worldSize);
    });
  }

  /**
   * Partial FC sampling of this shard for the global labels `y`: the sorted local indices of the
   * sampled centres (undefined: the whole shard) and each row's label in the sampled set (−1
   * when its class lives on another rank).
   */
  protected sample(y: Tensor): { index: Tensor | undefined; local: Tensor } {
    const { start, count } = this.shard;
    const inShard = y.ge(start).logicalAnd(y.lt(start + count));
    const shifted = T.where(inShard, y.sub(start), -1);
    this.lastSampled?.dispose();
    if (this.numSample >= count) {
      this.lastSampled = T.arange(start, start + count, 1, { dtype: "i64", device: this.device }).keep();
      return { index: undefined, local: shifted };
    }
    const positives = shifted.maskedSelect(inShard);
    const score = T.rand([count], { device: this.device });
    score.indexPut_([positives], T.scalarTensor(2, { device: this.device }));
    const numPositive = score.eq(2).sum().item();
    const k = Math.max(this.numSample, numPositive);
    const [, picked] = score.topk(k);
    const [index] = picked.sort();
    // Map shard index -> position in the sampled set (−1 for unsampled, never a label).
    const position = T.full([count], -1, { dtype: "i64", device: this.device });
    position.indexPut_([index!], T.arange(0, k, 1, { dtype: "i64", device: this.device }));
    const local = T.where(inShard, position.indexSelect(0, shifted.clamp(0, count - 1)), -1);
    this.lastSampled = index!.add(start).keep();
    return { index: index!, local };
  }

  /** Frees the shard weight and its gradient. */
  dispose(): void {
    this.weight.grad = undefined;
    this.weight.dispose();
    this.lastSampled?.dispose();
  }
}

/** What the head needs of its optimizer: a step (the fused head's SGD also steps in row blocks). */
export interface HeadOptimizer {
  step(): void;
}

export interface HeadStepOptions {
  /**
   * Multiplies every gradient this call produces (the shard's and the embeddings'): 1/M when the
   * global batch runs as M micro-batches, so their gradients add up to the batch's.
   */
  gradScale?: number;
  /**
   * The optimizer of a step that cannot be skipped and has this one micro-batch: a fused head
   * applies its update in the same pass over the shard (step() then has nothing left to do).
   */
  stepWith?: HeadOptimizer;
}

/** Unit rows of `w` [k, D] and their clamped norms [k, 1] (F.normalize's). */
export function unitRows(w: Tensor): { unit: Tensor; norm: Tensor } {
  const norm = w.norm(2, 1, true).clamp(EPS);
  return { unit: w.div(norm), norm };
}

/** ∂/∂w of w/|w| applied to the unit rows' gradient `gUnit` (overwritten). */
export function unitGradToWeight(gUnit: Tensor, unit: Tensor, norm: Tensor): Tensor {
  const along = gUnit.mul(unit).sum([1], true);
  return gUnit.sub_(unit.mul(along)).div_(norm);
}

/** The loss joined to `localEmbeddings`: its value is `loss`, its gradient `gradLocal`. */
export function surrogate(localEmbeddings: Tensor, loss: Tensor, gradLocal: Tensor): Tensor {
  return T.scope(() => {
    const s = localEmbeddings.float().mul(gradLocal).sum();
    return s.sub(s.detach()).add(loss);
  });
}

/**
 * arcface_torch's DistCrossEntropy: softmax over the classes of every rank for the rows of the
 * global batch, loss = mean of −log p(target), and its gradient w.r.t. this rank's logits,
 * (p − onehot)/N. Unlike arcface_torch, which clamps p(target) at 1e-30 (capping a row's loss at
 * 69, easily reached with s = 64 at initialisation), −log p is computed exactly as
 * log Σexp + max − z(target); gradients are the same.
 */
function distributedSoftmaxCE(
  g: ProcessGroup,
  logits: Tensor,
  labels: Tensor,
  n: number,
): { loss: Tensor; dLogits: Tensor } {
  const max = logits.amax([1], true);
  g.allReduce([max], "max").wait();
  const shifted = logits.sub(max);
  const p = shifted.exp();
  shifted.dispose();
  const sum = p.sum([1], true);
  g.allReduce([sum], "sum").wait();
  p.div_(sum);
  const owned = labels.ne(-1);
  const rows = owned.nonzero().flatten();
  const cols = labels.indexSelect(0, rows);
  // Target logit minus the row maximum, on its owner; 0 elsewhere.
  const target = T.zeros([n], { device: logits.device });
  target.indexPut_([rows], logits.index(rows, cols).sub(max.flatten().indexSelect(0, rows)));
  g.allReduce([target], "sum").wait();
  const loss = sum.flatten().log().sub(target).mean();
  p.indexPut_([rows, cols], T.scalarTensor(-1, { device: logits.device }), true);
  return { loss, dLogits: p.div_(n) };
}
