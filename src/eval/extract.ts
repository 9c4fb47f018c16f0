// Pulling the few scores above a floor out of a block without a full-size nonzero(): the block,
// read as one flat array, is cut into segments of SEGMENT consecutive values, the maximum of each
// segment is taken (a reduction over contiguous memory, about as cheap as reading the block once),
// and only segments whose maximum passes the floor are gathered (whole rows of a [n/SEGMENT,
// SEGMENT] view: contiguous reads) and filtered again. nonzero() runs on 1/SEGMENT of the block
// and on the gathered segments, never on the whole block.
// While a caller still lacks k scores (its floor is -inf) it asks for `need` = k: the k-th largest
// segment maximum g bounds the k-th largest score from below (k segments each hold a score >= g),
// so scores below g can never be among the k largest and need not be pulled out.
import * as T from "../torch/index.ts";
import { through, using } from "./handles.ts";

/**
 * 64 measured fastest on 2048-wide blocks with ~0.1% of scores passing: shorter segments make
 * the max reduction slower (16: ~10x), longer ones gather more values per passing segment.
 */
const SEGMENT = 64;

const OP_KTHVALUE = T.opId("aten::kthvalue");

/**
 * Every value of scores (any shape) greater than floor and, when need > 0, at least the need
 * largest values (then possibly a few more: those equal to the floor or to the bound).
 */
export function valuesAbove(scores: T.Tensor, floor: number, need = 0): Float32Array {
  const n = scores.numel;
  const whole = n - (n % SEGMENT);
  const parts: Float32Array[] = [];
  // Pull out values >= bound; bound is the floor, or lower while a caller still fills up.
  let bound = need > 0 ? -Infinity : floor;
  const strict = need === 0;
  const passing = (v: T.Tensor): T.Tensor => (strict ? v.gt(bound) : v.ge(bound));
  const pick = (v: T.Tensor): Float32Array =>
    using(v, (x) => x.indexSelect(0, passing(x).nonzero().view(-1)).data() as Float32Array);
  // Views of the block are freed as soon as they are used (see handles.ts).
  const flat = (from: number, count: number): T.Tensor =>
    through(scores.reshape(-1), (f) => (from === 0 && count === n ? f.view(-1) : f.narrow(0, from, count)));
  if (whole > 0) {
    const segments = through(flat(0, whole), (f) => f.view(whole / SEGMENT, SEGMENT));
    const maxima = segments.amax(1);
    if (need > 0 && need <= maxima.numel) {
      const [kth] = T.wrapMany(T.callOp(OP_KTHVALUE, maxima, maxima.numel - need + 1, 0, false));
      bound = Math.min(floor, kth!.item());
    }
    // Nothing to rule out yet: hand over the whole block (nonzero() on it would cost more).
    if (bound === -Infinity) {
      segments.dispose();
      return using(flat(0, n), (f) => f.data() as Float32Array);
    }
    const hits = passing(maxima).nonzero().view(-1);
    if (hits.numel > 0) parts.push(pick(segments.indexSelect(0, hits).view(-1)));
    segments.dispose();
  }
  if (whole < n) parts.push(pick(flat(whole, n - whole)));
  return parts.length === 1 ? parts[0]! : concatFloat32(parts);
}

/** The arrays end to end, in one new array. */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
