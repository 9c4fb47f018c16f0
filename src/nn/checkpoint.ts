// Activation checkpointing without a C++ autograd Function. libtorch's C++ API has no
// checkpoint, and the addon cannot put a JS callback inside the autograd graph, so the backward
// pass is driven from JS in two phases:
//   forward   each segment runs with gradients off (its activations are freed at once) and its
//             output is replaced by a fresh leaf that requires grad;
//   backward  loss.backward() stops at the last segment's leaf; tape.backward() then walks the
//             segments in reverse, replays each one with gradients on from its saved input, and
//             pushes the leaf's gradient through it (into the parameters and on to the input).
// Only segment inputs stay alive between the phases. The replay restores the RNG state so
// dropout draws the same mask, and BatchNorm does not update its running statistics twice.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";

let replayDepth = 0;

/** True while a checkpointed segment is being replayed for its gradients. */
export function isReplaying(): boolean {
  return replayDepth > 0;
}

interface Segment {
  run: (x: Tensor) => Tensor;
  /** The parameters only this segment uses (optional): complete once its replay is done. */
  params: readonly Tensor[] | undefined;
  input: Tensor;
  output: Tensor;
  rng: Tensor;
}

/**
 * Records checkpointed segments of one or more forward passes. Call `backwardFrom(loss)` (or
 * `loss.backward()` then `backward()`) in the same autocast context as the forward.
 */
export class CheckpointTape {
  #segments: Segment[] = [];

  /** Number of segments waiting for their backward pass. */
  get length(): number {
    return this.#segments.length;
  }

  /**
   * Runs fn(x) keeping no activations and returns a stand-in for its output. With gradients
   * off (evaluation) it is a plain call.
   */
  run(fn: (x: Tensor) => Tensor, x: Tensor, params?: readonly Tensor[]): Tensor {
    if (!T.isGradEnabled()) return fn(x);
    const rng = T.getRngState().keep();
    const y = T.noGrad(() => {
      const out = fn(x);
      const leaf = out.detach();
      out.dispose();
      return leaf;
    });
    y.requiresGrad_(true).keep();
    // The tape owns its own handles: callers may dispose what they passed or got back.
    this.#segments.push({ run: fn, params, input: x.alias().keep(), output: y, rng });
    return y.alias();
  }

  /** The parameters each waiting segment declared, in forward order (undefined: not declared). */
  segmentParams(): (readonly Tensor[] | undefined)[] {
    return this.#segments.map((s) => s.params);
  }

  /**
   * Propagates the gradients that reached the segments' outputs back through them, last segment
   * first; `onSegmentDone` runs after each replay (e.g. to reduce gradients that are complete).
   */
  backward(onSegmentDone?: (index: number, params: readonly Tensor[] | undefined) => void): void {
    try {
      for (let i = this.#segments.length - 1; i >= 0; i--) {
        const s = this.#segments[i]!;
        this.#replay(s);
        onSegmentDone?.(i, s.params);
      }
    } finally {
      this.clear();
    }
  }

  /** loss.backward(), then the checkpointed segments. */
  backwardFrom(loss: Tensor, grad?: Tensor): void {
    try {
      loss.backward(grad);
    } catch (err) {
      this.clear();
      throw err;
    }
    this.backward();
  }

  /** Drops every recorded segment (e.g. after a forward whose loss is not backpropagated). */
  clear(): void {
    for (const s of this.#segments) {
      s.input.dispose();
      s.output.dispose();
      s.rng.dispose();
    }
    this.#segments = [];
  }

  #replay(s: Segment): void {
    T.scope(() => {
      const g = s.output.grad;
      if (g === undefined) return; // the output did not reach the loss
      const xin = s.input.detach();
      if (s.input.requiresGrad) xin.requiresGrad_(true);
      const now = T.getRngState();
      T.setRngState(s.rng);
      replayDepth++;
      let out: Tensor;
      try {
        out = T.enableGrad(() => s.run(xin));
      } finally {
        replayDepth--;
        T.setRngState(now);
      }
      T.backward([out], [g]);
      const gx = xin.grad;
      if (gx !== undefined) T.backward([s.input], [gx]);
    });
  }
}
