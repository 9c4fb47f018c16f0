// Reading an evaluation's input from .npy files: embeddings [N, D] float, labels [N] int,
// optional groups [N] (0 = unmasked, 1 = masked). Errors name the file.
import * as T from "../torch/index.ts";
import type { PairEvalInput } from "./pairs.ts";

const INTS = new Set(["i64", "i32", "i16", "i8", "u8"]);

/** A 1-D integer vector of n entries, exactly as stored (int64 as bigint: ids past 2^53 stay apart). */
function vector(file: string, t: T.Tensor, n: number, what: string): ArrayLike<number> | ArrayLike<bigint> {
  if (t.ndim !== 1) throw new Error(`${file}: ${what} must be 1-D, got shape [${t.shape.join(", ")}]`);
  if (t.size(0) !== n) throw new Error(`${file}: ${t.size(0)} ${what}, but the embeddings have ${n} rows`);
  if (!INTS.has(t.dtype) && t.dtype !== "bool")
    throw new Error(`${file}: ${what} must be integers, got dtype ${t.dtype}`);
  return t.data() as ArrayLike<number> | ArrayLike<bigint>;
}

export function loadPairInput(files: { embeddings: string; labels: string; groups?: string }): PairEvalInput {
  const embeddings = T.loadNpy(files.embeddings);
  if (embeddings.ndim !== 2)
    throw new Error(`${files.embeddings}: embeddings must be [N, D], got [${embeddings.shape.join(", ")}]`);
  if (!T.isFloating(embeddings.dtype))
    throw new Error(
      `${files.embeddings}: embeddings must be float32/float16/float64, got ${embeddings.dtype}`,
    );
  const n = embeddings.size(0);
  if (n === 0 || embeddings.size(1) === 0) {
    const shape = embeddings.shape.join(", ");
    embeddings.dispose();
    throw new Error(`${files.embeddings}: embeddings are [${shape}]: nothing to evaluate`);
  }
  const labels = T.scope(() => vector(files.labels, T.loadNpy(files.labels), n, "labels"));
  if (files.groups === undefined) return { embeddings, labels };
  const groups = T.scope(() =>
    Array.from(vector(files.groups!, T.loadNpy(files.groups!), n, "groups"), Number),
  );
  const bad = groups.findIndex((g) => g !== 0 && g !== 1);
  if (bad >= 0)
    throw new Error(
      `${files.groups}: entry ${bad} is ${groups[bad]}; groups must be 0 (unmasked) or 1 (masked)`,
    );
  return { embeddings, labels, groups };
}

/**
 * Whether every value is finite. Row sums (one read, temporaries of N values) are all finite
 * only if every value is; when one is not (or a sum overflowed), an exact check by chunks of ~2^20
 * values, so that its temporaries stay small too: a fresh allocation past 32 MiB faults in page
 * by page, ~0.5 s for one the size of 50 000 x 512 floats on this project's VMs.
 */
function allFinite(e: T.Tensor): boolean {
  if (T.scope(() => e.sum(1).isfinite().all().item())) return true;
  const n = e.size(0);
  const rows = Math.max(1, Math.floor(2 ** 20 / Math.max(1, e.size(1))));
  for (let r = 0; r < n; r += rows)
    if (
      !T.scope(() =>
        e
          .narrow(0, r, Math.min(rows, n - r))
          .isfinite()
          .all()
          .item(),
      )
    )
      return false;
  return true;
}

export function checkPairInput(input: PairEvalInput): { labels: Int32Array; groups: Uint8Array | undefined } {
  const e = input.embeddings;
  if (e.ndim !== 2) throw new Error(`embeddings must be [N, D], got [${e.shape.join(", ")}]`);
  const n = e.size(0);
  if (n === 0 || e.size(1) === 0)
    throw new Error(`embeddings are [${e.shape.join(", ")}]: nothing to evaluate`);
  if (input.labels.length !== n)
    throw new Error(`labels has ${input.labels.length} entries, embeddings ${n} rows`);
  if (!allFinite(e)) throw new Error("embeddings contain NaN or infinite values");
  // Dense ids keyed by the labels as given: int64 labels (bigint) compare exactly.
  const ids = new Map<number | bigint, number>();
  const labels = Int32Array.from({ length: n }, (_, i) => {
    const l = input.labels[i]!;
    let id = ids.get(l);
    if (id === undefined) ids.set(l, (id = ids.size));
    return id;
  });
  let groups: Uint8Array | undefined;
  if (input.groups !== undefined) {
    if (input.groups.length !== n)
      throw new Error(`groups has ${input.groups.length} entries, embeddings ${n} rows`);
    groups = Uint8Array.from({ length: n }, (_, i) => {
      const g = Number(input.groups![i]);
      if (g !== 0 && g !== 1)
        throw new Error(`groups[${i}] is ${g}; groups must be 0 (unmasked) or 1 (masked)`);
      return g;
    });
  }
  return { labels, groups };
}
