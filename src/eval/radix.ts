// Exact order statistics of float32 scores by radix: a float's bit pattern, with the magnitude
// bits flipped for negative numbers, is an int32 whose order is the float order. A histogram of
// the high 16 bits finds the bucket holding the k-th largest score; a histogram of the low 16
// bits inside that bucket finds the score itself. Two passes, 2^16 counters each, no sorting.
import * as T from "../torch/index.ts";

export const RADIX = 1 << 16;

const OP = {
  viewDtype: T.opId("aten::view.dtype"),
  shiftRight: T.opId("aten::bitwise_right_shift.Tensor_Scalar"),
  andScalar: T.opId("aten::bitwise_and.Scalar"),
  xor: T.opId("aten::bitwise_xor.Tensor"),
};
const INT32 = 3; // c10::ScalarType::Int

/** Order-preserving int32 keys of float32 scores, flattened. */
export function orderKeys(scores: T.Tensor): T.Tensor {
  const bits = T.wrap(T.callOp(OP.viewDtype, scores.contiguous().view(-1), INT32));
  const sign = T.wrap(T.callOp(OP.shiftRight, bits, 31));
  const flip = T.wrap(T.callOp(OP.andScalar, sign, 0x7fffffff));
  return T.wrap(T.callOp(OP.xor, bits, flip));
}

/** Bucket (0..65535) of each key by its high 16 bits. */
export function highBuckets(keys: T.Tensor): T.Tensor {
  return T.wrap(T.callOp(OP.shiftRight, keys, 16)).add(RADIX / 2);
}

/** Low 16 bits (0..65535) of each key. */
export function lowBits(keys: T.Tensor): T.Tensor {
  return T.wrap(T.callOp(OP.andScalar, keys, 0xffff));
}

/**
 * Walks counts from the top: the index holding the k-th largest (1-based) and the rank of that
 * element within it. k must not exceed the total.
 */
export function walkDown(hist: Float64Array, k: number, offset = 0): { index: number; rank: number } {
  let above = 0;
  for (let i = RADIX - 1; i >= 0; i--) {
    const c = hist[offset + i]!;
    if (above + c >= k) return { index: i, rank: k - above };
    above += c;
  }
  throw new Error(`radix walk: asked for rank ${k} of ${above} counted values`);
}

/** The float32 whose key has these high and low halves. */
export function scoreOfKey(high: number, low: number): number {
  const key = ((high - RADIX / 2) << 16) | low;
  const bits = key >= 0 ? key : key ^ 0x7fffffff;
  const view = new DataView(new ArrayBuffer(4));
  view.setInt32(0, bits);
  return view.getFloat32(0);
}
