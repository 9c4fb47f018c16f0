// Hands a batch to the engine: one copy from the batch's contiguous buffer into libtorch tensors.
import * as T from "../torch/index.ts";
import type { Batch } from "./loader.ts";

export interface BatchTensors {
  /** [N, 3, H, W] float32 in [-1, 1] (u8/NHWC batches are converted here, in libtorch). */
  x: T.Tensor;
  /** [N] int64 class indices. */
  y: T.Tensor;
  /** [N] bool, true where a synthetic mask was drawn. */
  masked: T.Tensor;
}

// Tensors cannot wrap the loader's shared memory, so images pass through one reused plain buffer
// per dtype (reused: first-touching a fresh 40 MB buffer per batch costs more than the copy).
let scratchF32 = new Float32Array(0);
let scratchU8 = new Uint8Array(0);

function plain(a: Float32Array | Uint8Array): Float32Array | Uint8Array {
  if (!(a.buffer instanceof SharedArrayBuffer)) return a;
  if (a instanceof Float32Array) {
    if (scratchF32.length < a.length) scratchF32 = new Float32Array(a.length);
    const v = scratchF32.subarray(0, a.length);
    v.set(a);
    return v;
  }
  if (scratchU8.length < a.length) scratchU8 = new Uint8Array(a.length);
  const v = scratchU8.subarray(0, a.length);
  v.set(a);
  return v;
}

/** Copies a batch into tensors (the batch's buffers may be reused afterwards). */
export function batchToTensors(b: Batch, device?: string): BatchTensors {
  return T.scope(() => {
    let x = T.tensor(plain(b.images), { shape: b.shape, ...(device ? { device } : {}) });
    if (b.shape[3] === 3) x = x.permute(0, 3, 1, 2).contiguous();
    if (x.dtype !== "f32") x = x.float().sub(127.5).div(127.5);
    const y = T.tensor(b.labels, device ? { device } : {}).to("i64");
    const masked = T.tensor(b.masked, device ? { device } : {}).to("bool");
    return { x, y, masked };
  });
}
