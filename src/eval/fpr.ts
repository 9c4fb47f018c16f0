// Target false-positive rates, kept as the decimal text the user typed. The rank of the
// threshold, k = floor(x·n) + 1, is computed in exact rational arithmetic from that text, so a
// value such as 1e-5 × 100000 gives k = 2 and not whatever the double product rounds to.

/** One requested FPR: the key it is reported under and its exact decimal value. */
export interface TargetFpr {
  /** The text as given ("1e-5"); result objects are keyed by it. */
  readonly key: string;
  /** The value as a double (for display and plotting only). */
  readonly value: number;
  /** Exact decimal value = mantissa · 10^exponent. */
  readonly mantissa: bigint;
  readonly exponent: number;
}

const DECIMAL = /^\+?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Parses one FPR written in decimal or scientific notation; it must lie in [0, 1]. */
export function parseFpr(text: string): TargetFpr {
  const key = text.trim();
  const m = DECIMAL.exec(key);
  const intPart = m?.[1] ?? "";
  const fracPart = m?.[2] ?? "";
  if (m === null || intPart.length + fracPart.length === 0)
    throw new Error(`FPR '${text}' is not a decimal number (write it like 1e-5 or 0.00001)`);
  const mantissa = BigInt(intPart + fracPart || "0");
  const exponent = Number(m[3] ?? "0") - fracPart.length;
  const value = Number(key);
  if (!Number.isFinite(value) || value < 0 || value > 1)
    throw new Error(`FPR '${text}' must lie between 0 and 1`);
  return { key, value, mantissa, exponent };
}

/** Parses a comma-separated list ("1e-6,1e-5,1e-4"); duplicates (same text) are refused. */
export function parseFprList(text: string): TargetFpr[] {
  const parts = text.split(",").map((s) => s.trim());
  const seen = new Set<string>();
  return parts.map((p) => {
    const f = parseFpr(p);
    if (seen.has(f.key)) throw new Error(`FPR '${p}' is listed twice`);
    seen.add(f.key);
    return f;
  });
}

/** A TargetFpr from a number (its shortest round-trip decimal text). */
export function fprOf(x: number | string | TargetFpr): TargetFpr {
  if (typeof x === "object") return x;
  return parseFpr(typeof x === "number" ? String(x) : x);
}

/**
 * The 1-based rank of the threshold among impostor scores sorted descending:
 * k = floor(x·n) + 1, clamped to n (the "if k > n, τ = s_n"). 0 when n = 0.
 */
export function thresholdRank(x: TargetFpr, n: number): number {
  if (n <= 0) return 0;
  const big = BigInt(n) * x.mantissa;
  const floor = x.exponent >= 0 ? big * 10n ** BigInt(x.exponent) : big / 10n ** BigInt(-x.exponent);
  const k = floor + 1n;
  return k > BigInt(n) ? n : Number(k);
}
