// Does the exported file compute what mfr computes? The same inputs go through onnxruntime-node and
// through mfr's eval-mode forward (of the checkpoint as loaded, before any BatchNorm folding, so
// folding is checked too), and the embeddings are compared element-wise and row by row (cosine).
import * as T from "../torch/index.ts";
import { type Backbone, INPUT_SIZE } from "../models/index.ts";
import { IMAGE_FLOATS } from "./images.ts";
import { OnnxSession, type SessionOptions } from "./runtime.ts";

export interface Tolerance {
  /** Largest element-wise |onnx − mfr| (default 1e-4), relative to the embeddings' scale when it exceeds 1. */
  maxAbsDiff: number;
  /** Smallest row-wise cosine similarity (default 0.99999). */
  minCosine: number;
}

export const DEFAULT_TOLERANCE: Tolerance = { maxAbsDiff: 1e-4, minCosine: 0.99999 };

/** One set of inputs and what mfr's forward made of them. */
export interface VerifyCase {
  name: string;
  images: Float32Array;
  n: number;
  expected: Float32Array;
}

export interface CaseResult {
  name: string;
  batch: number;
  maxAbsDiff: number;
  minCosine: number;
  /** Largest |expected| element: the scale the absolute tolerance is taken at (at least 1). */
  scale: number;
  ok: boolean;
}

/** mfr's eval-mode forward of `n` images, as a flat [n, D] array. */
export function mfrForward(model: Backbone, images: Float32Array, n: number): Float32Array {
  if (model.training) throw new Error("mfrForward: the model must be in eval mode");
  return T.scope(() =>
    T.noGrad(() => {
      const x = T.tensor(images.subarray(0, n * IMAGE_FLOATS), { shape: [n, 3, INPUT_SIZE, INPUT_SIZE] });
      return model.forward(x).to("f32").contiguous().data() as Float32Array;
    }),
  );
}

/** Element-wise and row-wise agreement of two [n, dim] arrays. */
export function compareEmbeddings(
  got: Float32Array,
  want: Float32Array,
  dim: number,
): { maxAbsDiff: number; minCosine: number; maxAbs: number } {
  if (got.length !== want.length)
    throw new Error(`embedding sizes differ: ${got.length} vs ${want.length} values`);
  let maxAbsDiff = 0;
  let maxAbs = 0;
  let minCosine = 1;
  for (let r = 0; r < got.length / dim; r++) {
    let dot = 0;
    let ga = 0;
    let wa = 0;
    for (let d = r * dim; d < (r + 1) * dim; d++) {
      const a = got[d]!;
      const b = want[d]!;
      // NaN must fail the comparison, so test with !(<=) rather than Math.max.
      const diff = Math.abs(a - b);
      if (!(diff <= maxAbsDiff)) maxAbsDiff = Number.isNaN(diff) ? Infinity : diff;
      maxAbs = Math.max(maxAbs, Math.abs(b));
      dot += a * b;
      ga += a * a;
      wa += b * b;
    }
    const cos = ga === 0 && wa === 0 ? 1 : dot / Math.sqrt(ga * wa);
    if (!(cos >= minCosine)) minCosine = Number.isNaN(cos) ? -1 : cos;
  }
  return { maxAbsDiff, minCosine, maxAbs };
}

/** Runs every case through onnxruntime-node and compares with its expected embeddings. */
export async function verifyOnnx(
  model: string | Uint8Array,
  cases: readonly VerifyCase[],
  tol: Tolerance = DEFAULT_TOLERANCE,
  session: SessionOptions = {},
): Promise<CaseResult[]> {
  const s = await OnnxSession.open(model, session);
  try {
    const out: CaseResult[] = [];
    for (const c of cases) {
      const { data, dims } = await s.run(c.images.subarray(0, c.n * IMAGE_FLOATS), [
        c.n,
        3,
        INPUT_SIZE,
        INPUT_SIZE,
      ]);
      const dim = c.expected.length / c.n;
      if (dims.length !== 2 || dims[0] !== c.n || dims[1] !== dim)
        throw new Error(`${c.name}: ONNX output is [${dims.join(", ")}], mfr's is [${c.n}, ${dim}]`);
      const { maxAbsDiff, minCosine, maxAbs } = compareEmbeddings(data, c.expected, dim);
      const scale = Math.max(1, maxAbs);
      out.push({
        name: c.name,
        batch: c.n,
        maxAbsDiff,
        minCosine,
        scale,
        ok: maxAbsDiff <= tol.maxAbsDiff * scale && minCosine >= tol.minCosine,
      });
    }
    return out;
  } finally {
    await s.close();
  }
}
