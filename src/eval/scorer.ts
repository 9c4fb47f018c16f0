// Scores one block of pairs with one matrix product. Every pass of the evaluation scores a block
// through here, on the same tiles, so a pair gets bit-identical scores in every pass and on
// every rank: the exactness of the thresholds rests on it.
import * as T from "../torch/index.ts";
import { fillAt, through, using } from "./handles.ts";
import { type Block, type Layout, type Tile, genuineIndices } from "./layout.ts";

/**
 * "onednn": oneDNN's GEMM kernel, which on CPU runs at the machine's GEMM rate even where
 * libtorch's BLAS is slow, called as a 1x1 convolution (libtorch's mkldnn_convolution) of
 * channels-last views: rows [m, D] are the pixels of a [1, D, 1, m] image, columns [n, D] the
 * [n, D, 1, 1] filters, and the output, [1, n, 1, m] channels-last, is the [m, n] score matrix,
 * written straight into a dense tensor. (mkldnn_linear computes the same bits into oneDNN's own
 * layout, and copying them out cost ~5% of the product.) "mm": aten::mm (BLAS, or cuBLAS).
 */
export type GemmKind = "onednn" | "mm";

const OP = {
  conv: T.opId("aten::mkldnn_convolution"),
  tril: T.opId("aten::tril"),
};

/** a [m, D] times b [n, D] transposed: [m, n] (both dense and contiguous). */
function product(gemm: GemmKind, a: T.Tensor, b: T.Tensor): T.Tensor {
  if (gemm === "mm") return using(b.T, (bt) => a.mm(bt));
  const [m, d] = a.shape as [number, number];
  const n = b.size(0);
  const out = using(
    through(a.view(1, 1, m, d), (v) => v.permute(0, 3, 1, 2)),
    (image) =>
      using(b.view(n, d, 1, 1), (filters) =>
        T.wrap(T.callOp(OP.conv, image, filters, null, [0, 0], [1, 1], [1, 1], 1)),
      ),
  );
  return through(
    through(out, (o) => o.permute(0, 2, 3, 1)),
    (o) => o.view(m, n),
  );
}

const GENUINE_CACHE = 1 << 24;

export interface ScoredBlock {
  /** [rows, cols] float32 scores; pairs that do not count (j <= i, genuine) hold -Infinity. */
  readonly scores: T.Tensor;
  /** The block's genuine scores (same label, i < j). */
  readonly genuine: Float32Array;
}

export class PairScorer {
  readonly gemm: GemmKind;
  readonly #layout: Layout;
  readonly #tiles: T.Tensor[];
  readonly #tril = new Map<number, T.Tensor>();
  readonly #genuine = new Map<number, Int32Array>();
  #cached = 0;
  /** The sampled rows (every sampleStride-th row of each tile), dense, in layout order. */
  readonly #sample: T.Tensor | undefined;
  /** Layout positions of the sampled rows, ascending. */
  readonly samplePositions: Int32Array;

  /**
   * embeddings: [n, D] in the input's row order (any float dtype). Each tile gathers its rows in
   * layout order and L2-normalises them (cosine scores), tile by tile so that no second copy of
   * the whole matrix is ever made (nor a temporary of its size: fresh memory past 32 MiB faults in
   * page by page). With sampleStride > 0, rows tile.start, tile.start + stride,
   * ... of each tile are also kept as one dense matrix (1/stride of the embeddings) for
   * sampleScores.
   */
  constructor(embeddings: T.Tensor, layout: Layout, gemm: GemmKind = "onednn", sampleStride = 0) {
    this.gemm = gemm;
    this.#layout = layout;
    const sampled: T.Tensor[] = [];
    const positions: number[] = [];
    this.#tiles = layout.tiles.map((tile) =>
      T.scope(() => {
        const at = T.tensor(layout.order.subarray(tile.start, tile.end)).to("i64");
        const rows = T.normalize(embeddings.indexSelect(0, at).float()).contiguous();
        if (sampleStride > 0) {
          sampled.push(rows.slice(0, 0, null, sampleStride).contiguous().keep());
          for (let p = tile.start; p < tile.end; p += sampleStride) positions.push(p);
        }
        return rows.keep();
      }),
    );
    this.samplePositions = Int32Array.from(positions);
    if (sampled.length > 0) {
      this.#sample = T.scope(() => T.cat(sampled).contiguous().keep());
      for (const t of sampled) t.dispose();
    }
  }

  /**
   * The flat indices of a block's genuine pairs. Cached (every pass asks) up to GENUINE_CACHE
   * indices in all, so that a set with a huge number of genuine pairs still runs in bounded memory.
   */
  genuineIndices(block: Block): Int32Array {
    let idx = this.#genuine.get(block.index);
    if (idx === undefined) {
      idx = genuineIndices(this.#layout, block);
      if (this.#cached + idx.length <= GENUINE_CACHE) {
        this.#genuine.set(block.index, idx);
        this.#cached += idx.length;
      }
    }
    return idx;
  }

  /** Call inside T.scope: the returned tensor belongs to the caller's scope. */
  score(block: Block): ScoredBlock {
    const scores = using(this.#rows(block.rows), (a) =>
      using(this.#rows(block.cols), (b) => product(this.gemm, a, b)),
    );
    if (block.diagonal) scores.maskedFill_(this.#lowerTriangle(block.rows.end - block.rows.start), -Infinity);
    const idx = this.genuineIndices(block);
    let genuine: Float32Array = new Float32Array(0);
    if (idx.length > 0) {
      const at = through(T.tensor(idx, { dtype: "i32" }), (i) => i.to("i64"));
      genuine = using(scores.view(-1), (flat) => flat.indexSelect(0, at).data() as Float32Array);
      fillAt(scores, at, -Infinity);
    }
    return { scores, genuine };
  }

  /**
   * Scores of the first `rows` sampled rows against the rows of a tile: [rows, tile width], with
   * nothing masked (the sample pass masks what it does not count). Call inside T.scope.
   */
  sampleScores(rows: number, tile: Tile): T.Tensor {
    if (this.#sample === undefined) throw new Error("PairScorer: made without a row sample");
    return using(this.#sample.narrow(0, 0, rows), (a) => product(this.gemm, a, this.#tiles[tile.index]!));
  }

  /** A view of the stored rows of a tile or of a part of one (the caller frees it). */
  #rows(range: Tile): T.Tensor {
    const tile = this.#layout.tiles[range.index]!;
    return this.#tiles[range.index]!.narrow(0, range.start - tile.start, range.end - range.start);
  }

  /** Bool [h, h], true on and below the diagonal (pairs j <= i). */
  #lowerTriangle(h: number): T.Tensor {
    let m = this.#tril.get(h);
    if (m === undefined) {
      m = T.scope(() => T.wrap(T.callOp(OP.tril, T.ones([h, h], { dtype: "bool" }), 0)).keep());
      this.#tril.set(h, m);
    }
    return m;
  }

  dispose(): void {
    for (const t of this.#tiles) t.dispose();
    this.#sample?.dispose();
    for (const t of this.#tril.values()) t.dispose();
    this.#tril.clear();
  }
}
