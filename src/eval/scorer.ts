// Scores one block of pairs with one matrix product. Every pass of the evaluation scores a block
// through here, on the same tiles, so a pair gets bit-identical scores in every pass and on
// every rank: the exactness of the thresholds rests on it.
import * as T from "../torch/index.ts";
import { fillAt, through, using } from "./handles.ts";
import { BAND, type Block, type Layout, type Tile, genuineIndices } from "./layout.ts";

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

/**
 * f() with libtorch's intra-op threads set to n, then set back. The passes run everything but
 * the products on one thread (see runSerial): on this shared 2-core machine, each of the dozen
 * small parallel regions a block's masking, extraction and gathering would open has to wake the
 * other OpenMP thread, which under load waits milliseconds for a core (a 4 MB gather took 15 ms
 * on 2 threads against 0.8 ms on one); the product, one long region, keeps them all.
 */
export function withThreads<R>(n: number, f: () => R): R {
  const before = T.getNumThreads();
  if (before === n) return f();
  T.setNumThreads(n);
  try {
    return f();
  } finally {
    T.setNumThreads(before);
  }
}

/** a [m, D] times b [n, D] transposed: [m, n] (both dense and contiguous), on `threads`. */
function product(gemm: GemmKind, a: T.Tensor, b: T.Tensor, threads: number): T.Tensor {
  return withThreads(threads, () => productOn(gemm, a, b));
}

function productOn(gemm: GemmKind, a: T.Tensor, b: T.Tensor): T.Tensor {
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

/** Row norms within which dividing in float32 is exact enough (far inside its range). */
const NARROW_NORMS = [2 ** -60, 2 ** 60] as const;

/**
 * Each row's L2 norm in float64, computed as max|x| * ||x / max|x||| so that no square overflows
 * or underflows whatever the row's scale; 1 for a zero row (which then scores 0). By chunks of
 * rows: no temporary the size of the input.
 */
function rowNorms(embeddings: T.Tensor): T.Tensor {
  const n = embeddings.size(0);
  const chunk = Math.max(1, Math.floor(2 ** 20 / Math.max(1, embeddings.size(1))));
  const parts: T.Tensor[] = [];
  for (let r = 0; r < n; r += chunk)
    parts.push(
      T.scope(() => {
        const x = embeddings.narrow(0, r, Math.min(chunk, n - r)).to("f64");
        const top = x.abs().amax(1, true);
        const unit = top.maskedFill(top.eq(0), 1);
        return x.div(unit).norm(2, 1, true).mul(unit).keep();
      }),
    );
  const norms = T.scope(() => {
    const all = parts.length === 1 ? parts[0]! : T.cat(parts);
    return all.maskedFill(all.eq(0), 1).keep();
  });
  for (const t of parts) t.dispose();
  return norms;
}

export class PairScorer {
  readonly gemm: GemmKind;
  /** Intra-op threads for the products (the count set when the scorer was made). */
  readonly threads = T.getNumThreads();
  readonly #layout: Layout;
  readonly #input: T.Tensor;
  /** Per input row, its L2 norm (1 for a zero row): [n, 1] float64, exact for any finite row. */
  readonly #norms: T.Tensor;
  /** The same in float32, and whether it serves: input rows and norms all within float32's range. */
  readonly #norms32: T.Tensor | undefined;
  /** Per stored tile, the input rows it holds (int64). */
  readonly #at: T.Tensor[];
  /**
   * Gathered tiles kept between blocks: the last BAND tiles used for rows (least recently used
   * first) and the last one used for columns (blocks come in bands, see makeLayout).
   */
  readonly #rowTiles = new Map<number, T.Tensor>();
  #colTile: { index: number; rows: T.Tensor } | undefined;
  readonly #tril = new Map<number, T.Tensor>();
  readonly #genuine = new Map<number, Int32Array>();
  #cached = 0;
  /** The sampled rows (every sampleStride-th row of each tile), normalised, in layout order. */
  readonly #sample: T.Tensor | undefined;
  /** Layout positions of the sampled rows, ascending. */
  readonly samplePositions: Int32Array;

  /**
   * embeddings: [n, D] in the input's row order (any float dtype), read until dispose() and not
   * to be changed meanwhile. A tile's rows are gathered in layout order and L2-normalised (cosine
   * scores) when a block needs them, into memory the previous block freed: a normalised copy of
   * the whole matrix would be fresh memory, which faults in page by page at ~16 us a page on
   * this project's VMs (0.4-1.5 s for 50 000 x 512 floats), more than gathering tiles costs
   * (~3% of a block's product per gather; with the band's rows held, about one gather every
   * BAND blocks) at such sizes. With sampleStride > 0, rows tile.start,
   * tile.start + stride, ... of each tile are gathered once into one matrix for sampleScores.
   */
  constructor(embeddings: T.Tensor, layout: Layout, gemm: GemmKind = "onednn", sampleStride = 0) {
    this.gemm = gemm;
    this.#layout = layout;
    this.#input = embeddings;
    this.#norms = rowNorms(embeddings);
    // Norms far from 1 (rows of huge or tiny values) divide in float64: in float32 the squares
    // would overflow or underflow, and such rows would score 0 against everything.
    const safe = T.scope(
      () =>
        embeddings.dtype !== "f64" &&
        this.#norms.min().item() >= NARROW_NORMS[0] &&
        this.#norms.max().item() <= NARROW_NORMS[1],
    );
    this.#norms32 = safe ? T.scope(() => this.#norms.float().keep()) : undefined;
    this.#at = layout.tiles.map((tile) =>
      T.scope(() => T.tensor(layout.order.subarray(tile.start, tile.end)).to("i64").keep()),
    );
    const positions: number[] = [];
    if (sampleStride > 0)
      for (const tile of layout.tiles)
        for (let p = tile.start; p < tile.end; p += sampleStride) positions.push(p);
    this.samplePositions = Int32Array.from(positions);
    if (positions.length > 0)
      this.#sample = T.scope(() =>
        this.#gather(T.tensor(Int32Array.from(positions, (p) => layout.order[p]!)).to("i64")).keep(),
      );
  }

  /** The input rows at `at`, float32, each divided by its norm: [rows, D], a new tensor. */
  #gather(at: T.Tensor): T.Tensor {
    const norms32 = this.#norms32;
    if (norms32 === undefined)
      return T.scope(() =>
        this.#input.indexSelect(0, at).to("f64").div_(this.#norms.indexSelect(0, at)).float().keep(),
      );
    let rows = this.#input.indexSelect(0, at);
    if (rows.dtype !== "f32") rows = through(rows, (r) => r.float());
    using(norms32.indexSelect(0, at), (norms) => rows.div_(norms));
    return rows;
  }

  /** A tile's rows (a new handle: the caller frees it), gathered unless held. */
  #tile(index: number, role: "rows" | "cols"): T.Tensor {
    const held = this.#rowTiles.get(index);
    if (held !== undefined) {
      if (role === "rows") {
        this.#rowTiles.delete(index);
        this.#rowTiles.set(index, held);
      }
      return held.alias();
    }
    if (this.#colTile?.index === index) return this.#colTile.rows.alias();
    const rows = T.scope(() => this.#gather(this.#at[index]!).keep());
    if (role === "rows") {
      this.#rowTiles.set(index, rows);
      if (this.#rowTiles.size > BAND) {
        const [oldest, t] = this.#rowTiles.entries().next().value as [number, T.Tensor];
        this.#rowTiles.delete(oldest);
        t.dispose();
      }
    } else {
      this.#colTile?.rows.dispose();
      this.#colTile = { index, rows };
    }
    return rows.alias();
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
    const scores = using(this.#rows(block.rows, "rows"), (a) =>
      using(this.#rows(block.cols, "cols"), (b) => product(this.gemm, a, b, this.threads)),
    );
    if (block.diagonal) {
      // Columns start where the rows do: pairs j <= i lie in the leading square.
      const h = block.rows.end - block.rows.start;
      using(scores.narrow(1, 0, h), (square) => square.maskedFill_(this.#lowerTriangle(h), -Infinity));
    }
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
    return using(this.#sample.narrow(0, 0, rows), (a) =>
      using(this.#tile(tile.index, "cols"), (b) => product(this.gemm, a, b, this.threads)),
    );
  }

  /** The rows of a tile or of a part of one (the caller frees the handle). */
  #rows(range: Tile, role: "rows" | "cols"): T.Tensor {
    const tile = this.#layout.tiles[range.index]!;
    return through(this.#tile(range.index, role), (t) =>
      t.narrow(0, range.start - tile.start, range.end - range.start),
    );
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
    for (const t of this.#rowTiles.values()) t.dispose();
    this.#rowTiles.clear();
    this.#colTile?.rows.dispose();
    this.#colTile = undefined;
    this.#norms.dispose();
    this.#norms32?.dispose();
    for (const t of this.#at) t.dispose();
    this.#sample?.dispose();
    for (const t of this.#tril.values()) t.dispose();
    this.#tril.clear();
  }
}
