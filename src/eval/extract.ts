// Pulling the few scores above a floor out of a block without a full-size nonzero(): the block
// is cut into groups of GROUP consecutive rows, the column-wise maximum of each group is taken
// (a vectorised reduction over the middle dim, about as cheap as reading the block once), and
// only groups whose maximum passes the floor are gathered and filtered again. nonzero() runs on
// 1/GROUP of the block and on the gathered groups, never on the whole block.
// While a caller still lacks k scores (its floor is -inf) it asks for `need` = k: the k-th largest
// group maximum g bounds the k-th largest score from below (k groups each hold a score >= g), so
// scores below g can never be among the k largest and need not be pulled out.
import * as T from "../torch/index.ts";

const GROUP = 16;

const OP_KTHVALUE = T.opId("aten::kthvalue");

/**
 * Every value of scores [h, w] greater than floor and, when need > 0, at least the need largest
 * values (then possibly a few more: those equal to the floor or to the bound).
 */
export function valuesAbove(scores: T.Tensor, floor: number, need = 0): Float32Array {
  const [h, w] = scores.shape as [number, number];
  const grouped = h - (h % GROUP);
  const parts: Float32Array[] = [];
  // Pull out values >= bound; bound is the floor, or lower while a caller still fills up.
  let bound = need > 0 ? -Infinity : floor;
  const pick = (v: T.Tensor, strict: boolean): Float32Array => {
    const flat = v.reshape(-1);
    const keep = strict ? flat.gt(bound) : flat.ge(bound);
    return flat.indexSelect(0, keep.nonzero().view(-1)).data() as Float32Array;
  };
  if (grouped > 0) {
    const s3 = scores.narrow(0, 0, grouped).view(grouped / GROUP, GROUP, w);
    const maxima = s3.amax(1);
    if (need > 0 && need <= maxima.numel) {
      const flat = maxima.view(-1);
      const [kth] = T.wrapMany(T.callOp(OP_KTHVALUE, flat, flat.numel - need + 1, 0, false));
      bound = Math.min(floor, kth!.item());
    }
    // Nothing to rule out yet: hand over the whole block (nonzero() on it would cost more).
    if (bound === -Infinity) return scores.reshape(-1).data() as Float32Array;
    const strict = need === 0;
    const hits = (strict ? maxima.gt(bound) : maxima.ge(bound)).nonzero(); // [K, 2]: (group, column)
    // The K groups' values, [K, GROUP], filtered again so that only passing values reach JS.
    if (hits.size(0) > 0) parts.push(pick(s3.index(hits.select(1, 0), null, hits.select(1, 1)), strict));
  }
  if (grouped < h) parts.push(pick(scores.narrow(0, grouped, h - grouped), need === 0));
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
