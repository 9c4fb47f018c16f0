// Few live handles on a block's memory. The addon reports the storage of every tensor handle to
// V8 as external memory, views included, and V8 answers ~64 MiB of growth of it with a full
// (mark-compact) GC: a 16 MiB block of scores seen through half a dozen views cost one every
// block or two, ~4 ms each, a fifth of the block's GEMM. So intermediate views are freed as soon
// as the next one exists, not at the end of the block's scope. This is the one documented
// exception to mfr's tensor idiom (src/torch/scope.ts): the pair evaluation's hot loop only.
import * as T from "../torch/index.ts";

/** f(t), then t's handle freed (the result may be a view of t: the storage lives on). */
export function through(t: T.Tensor, f: (t: T.Tensor) => T.Tensor): T.Tensor {
  try {
    return f(t);
  } finally {
    t.dispose();
  }
}

/** f(t), then t's handle freed, for results that are not tensors. */
export function using<R>(t: T.Tensor, f: (t: T.Tensor) => R): R {
  try {
    return f(t);
  } finally {
    t.dispose();
  }
}

const OP_INDEX_FILL = T.opId("aten::index_fill_.int_Scalar");

/** Sets the values of t (contiguous) at flat indices `at` (int64) to value, in place. */
export function fillAt(t: T.Tensor, at: T.Tensor, value: number): void {
  using(t.view(-1), (flat) => {
    // The op returns a second handle on t, freed at once too.
    T.wrap(T.callOp(OP_INDEX_FILL, flat, 0, at, value)).dispose();
  });
}
