// How the pairs are laid out for block scoring. Rows are reordered by (group, label) so that
// (a) every tile of rows holds one group only, which makes each block of pairs belong to exactly
// one subset (unmasked-unmasked, masked-masked or masked-unmasked), and (b) the genuine pairs of
// a block are a few small rectangles found from label runs, never a per-pair test.

export type SubsetName = "all" | "masked-unmasked" | "masked-masked" | "unmasked-unmasked";
/** The subsets a grouped evaluation reports, after "all". */
export const GROUP_SUBSETS = ["masked-unmasked", "masked-masked", "unmasked-unmasked"] as const;
export type GroupSubset = (typeof GROUP_SUBSETS)[number];

export interface PairCounts {
  genuine: number;
  impostor: number;
}

/**
 * A contiguous range of reordered rows inside one group. The layout's tiles are the units the
 * rows are stored in; a block's rows or columns are a tile or a part of one (same index).
 */
export interface Tile {
  /** The stored tile holding these rows. */
  readonly index: number;
  readonly start: number;
  readonly end: number;
  /** 0 = unmasked, 1 = masked; 0 when no groups were given. */
  readonly group: number;
}

/**
 * The pairs (i in rows, j in cols, i < j) scored by one matrix product. The pairs inside a tile
 * come as a staircase of blocks, one per strip of its rows (up to DIAGONAL_STRIPS), each strip
 * against itself and the rest of the tile after it: a product over the whole tile would compute
 * twice the pairs it needs, a staircase of s strips 1 + 1/s times.
 */
export interface Block {
  readonly index: number;
  readonly rows: Tile;
  readonly cols: Tile;
  /**
   * Columns start where the rows start (and reach at least as far): only pairs above the
   * diagonal of that square count.
   */
  readonly diagonal: boolean;
  /** The group subset it belongs to; undefined without groups (then only "all"). */
  readonly subset: GroupSubset | undefined;
}

interface Run {
  start: number;
  end: number;
  label: number;
}

export interface Layout {
  readonly n: number;
  /** order[p] = original row placed at position p. */
  readonly order: Int32Array;
  readonly hasGroups: boolean;
  readonly tiles: readonly Tile[];
  readonly blocks: readonly Block[];
  /** Pair counts for "all" and, with groups, each group subset. */
  readonly counts: ReadonlyMap<SubsetName, PairCounts>;
  /** Runs of equal label in reordered rows (never crossing a group boundary). */
  readonly runs: readonly Run[];
  /** Per group: label -> index into runs. */
  readonly runOf: readonly Map<number, number>[];
}

/** The subset of pairs between a row of group a and a row of group b. */
export function groupSubset(a: number, b: number): GroupSubset {
  return a !== b ? "masked-unmasked" : a === 1 ? "masked-masked" : "unmasked-unmasked";
}

/** Strips of a tile's staircase (see Block): 4 leaves 1/8 of a tile's square computed twice. */
const DIAGONAL_STRIPS = 4;

/** Row tiles per band of blocks (see makeLayout); a scorer holds as many. */
export const BAND = 4;

const choose2 = (m: number): number => (m < 2 ? 0 : (m * (m - 1)) / 2);

/**
 * Rows per unit of the cuts below. A block's columns are the output channels of oneDNN's
 * product, which runs ~4% slower when their count is not a multiple of 16 (1923 columns:
 * 177 GFLOP/s, 1920 or 1936: 181-184, on one thread here); its rows hardly matter.
 */
const ALIGN = 16;

/**
 * parts + 1 cut points from 0 to len, near-equally spaced. Where every part can hold ALIGN rows,
 * the parts are multiples of ALIGN rows but the first, which takes the remainder (< ALIGN rows):
 * a block's columns are a tile after its rows' tile or a strip's end of it, so the first tile
 * of a group and the first strip of a tile are the columns of the fewest blocks.
 */
function cuts(len: number, parts: number): number[] {
  const units = Math.floor(len / ALIGN);
  const rest = len - ALIGN * units;
  return Array.from({ length: parts + 1 }, (_, t) =>
    t === 0
      ? 0
      : units >= parts
        ? rest + ALIGN * Math.floor((units * t) / parts)
        : Math.floor((len * t) / parts),
  );
}

/**
 * Lays out n rows with dense labels (any integers) and optional 0/1 groups into tiles of at
 * most blockSize rows and the blocks over all tile pairs (a <= b).
 */
export function makeLayout(
  labels: ArrayLike<number>,
  groups: ArrayLike<number> | undefined,
  blockSize: number,
): Layout {
  const n = labels.length;
  if (groups !== undefined && groups.length !== n)
    throw new Error(`groups has ${groups.length} entries but labels has ${n}`);
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new Error(`block size must be >= 1, got ${blockSize}`);
  const g = (i: number): number => (groups === undefined ? 0 : groups[i]!);
  const order = Int32Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => g(a) - g(b) || labels[a]! - labels[b]! || a - b,
  );
  // Label runs and, per group, where each label's run is.
  const runs: Run[] = [];
  const runOf = [new Map<number, number>(), new Map<number, number>()];
  for (let p = 0; p < n;) {
    const row = order[p]!;
    const label = labels[row]!;
    const group = g(row);
    let q = p + 1;
    while (q < n && labels[order[q]!] === label && g(order[q]!) === group) q++;
    runOf[group]!.set(label, runs.length);
    runs.push({ start: p, end: q, label });
    p = q;
  }
  let unmasked = 0;
  for (let i = 0; i < n; i++) if (g(i) === 0) unmasked++;
  const segments: [number, number, number][] = [[0, unmasked, 0]];
  if (groups !== undefined) segments.push([unmasked, n, 1]);
  const tiles: Tile[] = [];
  // As few tiles as blockSize allows, of near-equal sizes (a short last tile would make blocks
  // of a shape that runs the GEMM less efficiently).
  for (const [s, e, group] of segments) {
    let count = Math.ceil((e - s) / blockSize);
    let at = cuts(e - s, count);
    while (at.some((c, t) => t > 0 && c - at[t - 1]! > blockSize)) at = cuts(e - s, ++count);
    for (let t = 0; t < count; t++)
      tiles.push({ index: tiles.length, start: s + at[t]!, end: s + at[t + 1]!, group });
  }
  const blocks: Block[] = [];
  const add = (rows: Tile, cols: Tile, diagonal: boolean): void => {
    const subset = groups === undefined ? undefined : groupSubset(rows.group, cols.group);
    blocks.push({ index: blocks.length, rows, cols, diagonal, subset });
  };
  const staircase = (tile: Tile): void => {
    const h = tile.end - tile.start;
    const strips = Math.min(DIAGONAL_STRIPS, h);
    const at = cuts(h, strips);
    for (let k = 0; k < strips; k++) {
      const start = tile.start + at[k]!;
      const end = tile.start + at[k + 1]!;
      add({ ...tile, start, end }, strips === 1 ? tile : { ...tile, start }, true);
    }
  };
  // Bands of BAND row tiles: their own pairs, then each later column tile against all of them,
  // so that a scorer holding the band's rows gathers each column tile once per band.
  for (let a0 = 0; a0 < tiles.length; a0 += BAND) {
    const a1 = Math.min(tiles.length, a0 + BAND);
    for (let a = a0; a < a1; a++) {
      staircase(tiles[a]!);
      for (let b = a + 1; b < a1; b++) add(tiles[a]!, tiles[b]!, false);
    }
    for (let b = a1; b < tiles.length; b++) for (let a = a0; a < a1; a++) add(tiles[a]!, tiles[b]!, false);
  }
  return {
    n,
    order,
    hasGroups: groups !== undefined,
    tiles,
    blocks,
    counts: pairCounts(labels, groups, unmasked),
    runs,
    runOf,
  };
}

function pairCounts(
  labels: ArrayLike<number>,
  groups: ArrayLike<number> | undefined,
  unmasked: number,
): Map<SubsetName, PairCounts> {
  const n = labels.length;
  const perLabel = new Map<number, [number, number]>();
  for (let i = 0; i < n; i++) {
    const c = perLabel.get(labels[i]!) ?? [0, 0];
    c[groups === undefined ? 0 : groups[i]!]! += 1;
    perLabel.set(labels[i]!, c);
  }
  let uu = 0;
  let mm = 0;
  let mu = 0;
  for (const [u, m] of perLabel.values()) {
    uu += choose2(u);
    mm += choose2(m);
    mu += u * m;
  }
  const masked = n - unmasked;
  const out = new Map<SubsetName, PairCounts>();
  out.set("all", { genuine: uu + mm + mu, impostor: choose2(n) - (uu + mm + mu) });
  if (groups !== undefined) {
    out.set("masked-unmasked", { genuine: mu, impostor: unmasked * masked - mu });
    out.set("masked-masked", { genuine: mm, impostor: choose2(masked) - mm });
    out.set("unmasked-unmasked", { genuine: uu, impostor: choose2(unmasked) - uu });
  }
  return out;
}

/** First run index whose end is after position p (runs are sorted and cover 0..n). */
export function runAt(runs: readonly Run[], p: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid]!.end <= p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Flat indices (row-major in the block's rows x cols matrix) of the genuine pairs the block
 * scores: same label, and for a diagonal block only column > row.
 */
export function genuineIndices(layout: Layout, block: Block): Int32Array {
  const { rows, cols } = block;
  const width = cols.end - cols.start;
  const out: number[] = [];
  const colRuns = layout.runOf[cols.group]!;
  for (let r = runAt(layout.runs, rows.start); r < layout.runs.length; r++) {
    const run = layout.runs[r]!;
    if (run.start >= rows.end) break;
    const ci = colRuns.get(run.label);
    if (ci === undefined) continue;
    const colRun = layout.runs[ci]!;
    const c0 = Math.max(colRun.start, cols.start);
    const c1 = Math.min(colRun.end, cols.end);
    if (c0 >= c1) continue;
    const r0 = Math.max(run.start, rows.start);
    const r1 = Math.min(run.end, rows.end);
    for (let i = r0; i < r1; i++)
      for (let j = block.diagonal ? Math.max(c0, i + 1) : c0; j < c1; j++)
        out.push((i - rows.start) * width + (j - cols.start));
  }
  return Int32Array.from(out);
}
