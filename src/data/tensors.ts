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

export function batchToTensors(b: Batch, device?: string): BatchTensors {
  return T.scope(() => {
    let x = T.tensor(b.images, { shape: b.shape, ...(device ? { device } : {}) });
    if (b.shape[3] === 3) x = x.permute(0, 3, 1, 2).contiguous();
    if (x.dtype !== "f32") x = x.float().sub(127.5).div(127.5);
    const y = T.tensor(b.labels, device ? { device } : {}).to("i64");
    const masked = T.tensor(b.masked, device ? { device } : {}).to("bool");
    return { x, y, masked };
  });
}
