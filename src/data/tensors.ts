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
  /** [N, D] float32: the batch's teacher embeddings, where the batch carries them. */
  teacher?: T.Tensor;
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

/**
 * Copies a batch into tensors on `device` (default CPU; the batch's buffers may be reused
 * afterwards). To CUDA the bytes travel as they came (u8 images are a quarter of their f32 size)
 * through pinned memory with non-blocking copies; layout and normalisation run on the device.
 */
export function batchToTensors(b: Batch, device = "cpu"): BatchTensors {
  return T.scope(() => {
    let x = T.toDevice(T.tensor(plain(b.images), { shape: b.shape }), device);
    if (b.shape[3] === 3) x = x.permute(0, 3, 1, 2).contiguous();
    if (x.dtype !== "f32") x = x.float().sub(127.5).div(127.5);
    const y = T.toDevice(T.tensor(b.labels), device).to("i64");
    const masked = T.toDevice(T.tensor(b.masked), device).to("bool");
    if (!b.teacher) return { x, y, masked };
    const n = b.labels.length;
    const t = T.tensor(b.teacher, { dtype: "f16", shape: [n, b.teacher.length / n] });
    return { x, y, masked, teacher: T.toDevice(t, device).float() };
  });
}

/**
 * The batches as tensors on `device`, one ahead: batch k+1 is read and its copy queued before
 * batch k is handed out, so the step never waits for the loader or a host-to-device copy. Each
 * batch's tensors are freed when the next is asked for (or the loop ends). An error from `onRead`
 * surfaces when the batch before it is done with.
 */
export async function* prefetchToDevice(
  batches: AsyncIterable<Batch>,
  device = "cpu",
  /** Called on each batch as it is read, while its buffers are still the loader's (a check). */
  onRead?: (b: Batch) => void,
): AsyncGenerator<BatchTensors, void, undefined> {
  let ready: BatchTensors | undefined;
  let handed: BatchTensors | undefined;
  const free = (t: BatchTensors | undefined): void => {
    t?.x.dispose();
    t?.y.dispose();
    t?.masked.dispose();
    t?.teacher?.dispose();
  };
  try {
    for await (const b of batches) {
      onRead?.(b);
      const next = batchToTensors(b, device);
      if (ready === undefined) {
        ready = next;
        continue;
      }
      [handed, ready] = [ready, next];
      yield handed;
      free(handed);
      handed = undefined;
    }
    [handed, ready] = [ready, undefined];
    if (handed) yield handed;
  } finally {
    free(handed);
    free(ready);
  }
}
