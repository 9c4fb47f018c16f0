// Pulling the few scores above a floor out of a block without a full-size nonzero(): the block
// is cut into groups of GROUP consecutive rows, the column-wise maximum of each group is taken
// (a vectorised reduction over the middle dim, about as cheap as reading the block once), and
// only groups whose maximum passes the floor are gathered. nonzero() then runs on 1/GROUP of
// the block. The answer is a superset: every score > floor, plus its group neighbours.
// While a caller still lacks k scores (its floor is -inf) it asks for `need` = k: the k-th largest
// group maximum g bounds the k-th largest score from below (k groups each hold a score >= g), so
// scores below g can never be among the k largest and need not be pulled out.
import * as T from "../torch/index.ts";

const GROUP = 16;

const OP_KTHVALUE = T.opId("aten::kthvalue");

/**
 * Every value of scores [h, w] greater than floor and, when need > 0, at least the need largest
 * values; along with some others.
 */
export function valuesAbove(scores: T.Tensor, floor: number, need = 0): Float32Array {
  const [h, w] = scores.shape as [number, number];
  const grouped = h - (h % GROUP);
  const parts: Float32Array[] = [];
  if (grouped > 0) {
    const s3 = scores.narrow(0, 0, grouped).view(grouped / GROUP, GROUP, w);
    const maxima = s3.amax(1);
    let hits: T.Tensor;
    if (need > 0 && need <= maxima.numel) {
      const flat = maxima.view(-1);
      const [kth] = T.wrapMany(T.callOp(OP_KTHVALUE, flat, flat.numel - need + 1, 0, false));
      const bound = Math.min(floor, kth!.item());
      hits = maxima.ge(bound).nonzero(); // [K, 2]: (row group, column)
    } else {
      hits = need > 0 ? maxima.ge(-Infinity).nonzero() : maxima.gt(floor).nonzero();
    }
    if (hits.size(0) > 0) {
      const groupIdx = hits.select(1, 0);
      const colIdx = hits.select(1, 1);
      parts.push(s3.index(groupIdx, null, colIdx).data() as Float32Array); // [K, GROUP]
    }
  }
  if (grouped < h) {
    const rest = scores.narrow(0, grouped, h - grouped).reshape(-1);
    const keep = need > 0 ? rest.ge(-Infinity) : rest.gt(floor);
    parts.push(rest.indexSelect(0, keep.nonzero().view(-1)).data() as Float32Array);
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
