// Reading an evaluation's input from .npy files: embeddings [N, D] float, labels [N] int,
// optional groups [N] (0 = unmasked, 1 = masked). Errors name the file.
import * as T from "../torch/index.ts";
import type { PairEvalInput } from "./pairs.ts";

const INTS = new Set(["i64", "i32", "i16", "i8", "u8"]);

function vector(file: string, t: T.Tensor, n: number | undefined, what: string): number[] {
  if (t.ndim !== 1) throw new Error(`${file}: ${what} must be 1-D, got shape [${t.shape.join(", ")}]`);
  if (n !== undefined && t.size(0) !== n)
    throw new Error(`${file}: ${t.size(0)} ${what}, but the embeddings have ${n} rows`);
  if (!INTS.has(t.dtype) && t.dtype !== "bool")
    throw new Error(`${file}: ${what} must be integers, got dtype ${t.dtype}`);
  return t.toArray();
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
  const labels = T.scope(() => vector(files.labels, T.loadNpy(files.labels), n, "labels"));
  if (files.groups === undefined) return { embeddings, labels };
  const groups = T.scope(() => vector(files.groups!, T.loadNpy(files.groups!), n, "groups"));
  const bad = groups.findIndex((g) => g !== 0 && g !== 1);
  if (bad >= 0)
    throw new Error(
      `${files.groups}: entry ${bad} is ${groups[bad]}; groups must be 0 (unmasked) or 1 (masked)`,
    );
  return { embeddings, labels, groups };
}

export function checkPairInput(input: PairEvalInput): { labels: Int32Array; groups: Uint8Array | undefined } {
  const e = input.embeddings;
  if (e.ndim !== 2) throw new Error(`embeddings must be [N, D], got [${e.shape.join(", ")}]`);
  const n = e.size(0);
  if (input.labels.length !== n)
    throw new Error(`labels has ${input.labels.length} entries, embeddings ${n} rows`);
  const finite = T.scope(() => e.isfinite().all().item());
  if (!finite) throw new Error("embeddings contain NaN or infinite values");
  const ids = new Map<number, number>();
  const labels = Int32Array.from({ length: n }, (_, i) => {
    const l = Number(input.labels[i]);
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
