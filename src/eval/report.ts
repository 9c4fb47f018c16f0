// What an evaluation leaves behind: the JSON object the CLI prints, ROC and DET curves drawn by
// Vega-Lite (rendered headless to SVG, then to PNG by sharp) and a self-contained HTML report,
// and the curves' points (curves.json), from which a run's report draws them again.
import fs from "node:fs";
import path from "node:path";
import sharp from "sharp";
import type { TopLevelSpec } from "vega-lite";
import * as T from "../torch/index.ts";
import type { CurvePoint } from "./curve.ts";
import type { PairEvaluation, SubsetResult } from "./pairs.ts";

/** The file beside result.json that holds CurveData. */
export const CURVES_FILE = "curves.json";

/**
 * The evaluation as one JSON object, {"pairs": ..., "subsets": ...}, with the FPR keys in the
 * order they were asked for (JSON.stringify would move integer-like keys such as "1" first).
 */
export function evaluationJson(ev: PairEvaluation): string {
  const obj = (entries: [string, string][]): string =>
    `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
  const byKey = (m: Record<string, number | null>): string =>
    obj(ev.info.fprKeys.map((k) => [k, JSON.stringify(m[k] ?? null)]));
  const subset = (s: SubsetResult): string =>
    obj([
      ["genuine", String(s.genuine)],
      ["impostor", String(s.impostor)],
      ["tpr", byKey(s.tpr)],
      ["threshold", byKey(s.threshold)],
    ]);
  return obj([
    [
      "pairs",
      obj([
        ["genuine", String(ev.pairs.genuine)],
        ["impostor", String(ev.pairs.impostor)],
      ]),
    ],
    ["subsets", obj(Object.entries(ev.subsets).map(([name, s]) => [name, subset(s)]))],
  ]);
}

export type CurveKind = "roc" | "det";

/** What the ROC and DET charts draw; curves.json holds it. */
export interface CurveData {
  /** The target FPRs, as asked for (marked on the curves). */
  fprKeys: readonly string[];
  /** TPR at each target FPR, by subset. */
  subsets: Record<string, { tpr: Record<string, number | null> }>;
  curves: Partial<Record<string, CurvePoint[]>>;
}

export function curveData(ev: PairEvaluation): CurveData {
  const subsets = Object.fromEntries(Object.entries(ev.subsets).map(([name, s]) => [name, { tpr: s.tpr }]));
  return { fprKeys: ev.info.fprKeys, subsets, curves: ev.curves };
}

function curveSpec(ev: CurveData, kind: CurveKind): TopLevelSpec {
  const values = Object.entries(ev.curves).flatMap(([subset, pts = []]) =>
    pts
      .map((p) => ({ subset, fpr: p.fpr, tpr: p.tpr, fnr: 1 - p.tpr, exact: p.exact }))
      .filter((p) => kind === "roc" || p.fnr > 0),
  );
  const marks = Object.entries(ev.subsets).flatMap(([subset, s]) =>
    ev.fprKeys.flatMap((k) => {
      const tpr = s.tpr[k];
      return tpr === null || tpr === undefined || (kind === "det" && tpr >= 1)
        ? []
        : [{ subset, fpr: Math.max(Number(k), 1e-7), tpr, fnr: 1 - tpr }];
    }),
  );
  const y =
    kind === "roc"
      ? { field: "tpr", type: "quantitative" as const, title: "TPR", scale: { domain: [0, 1] } }
      : {
          field: "fnr",
          type: "quantitative" as const,
          title: "FNR (1 - TPR)",
          scale: { type: "log" as const },
        };
  const x = {
    field: "fpr",
    type: "quantitative" as const,
    title: "FPR",
    scale: { type: "log" as const, domain: [1e-7, 1] },
    axis: { format: ".0e" },
  };
  const color = { field: "subset", type: "nominal" as const, title: "pairs" };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: kind === "roc" ? "ROC: TPR at each FPR" : "DET: FNR at each FPR",
    width: 520,
    height: 360,
    layer: [
      { data: { values }, mark: { type: "line", interpolate: "step-after" }, encoding: { x, y, color } },
      { data: { values: marks }, mark: { type: "point", filled: true, size: 50 }, encoding: { x, y, color } },
    ],
  };
}

/** The curve as SVG text (Vega-Lite compiled to Vega, rendered without a browser). */
export async function curveSvg(ev: CurveData, kind: CurveKind): Promise<string> {
  return chartSvg(curveSpec(ev, kind));
}

/** A Vega-Lite chart as SVG text (compiled to Vega, rendered without a browser). */
export async function chartSvg(spec: TopLevelSpec): Promise<string> {
  // Loaded on first use: Vega is large and most commands never draw.
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const fmt = (v: number | null | undefined, digits: number): string =>
  v === null || v === undefined ? "–" : v.toFixed(digits);

function html(ev: PairEvaluation, title: string, notes: readonly string[], roc: string, det: string): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const head = ev.info.fprKeys.map((k) => `<th>TPR@${esc(k)}</th><th>τ@${esc(k)}</th>`).join("");
  const rows = Object.entries(ev.subsets)
    .map(
      ([name, s]) =>
        `<tr><td>${esc(name)}</td><td>${s.genuine}</td><td>${s.impostor}</td>` +
        ev.info.fprKeys
          .map((k) => `<td>${fmt(s.tpr[k], 5)}</td><td>${fmt(s.threshold[k], 5)}</td>`)
          .join("") +
        "</tr>",
    )
    .join("\n");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>
</head><body>
<h1>${esc(title)}</h1>
<p>Impostor scores sorted descending s<sub>1</sub> ≥ … ≥ s<sub>n</sub>; for FPR x, k = ⌊x·n⌋ + 1,
τ = s<sub>k</sub> (s<sub>n</sub> if k &gt; n); TPR = |{genuine &gt; τ}| / genuine. Exact over all pairs.</p>
<table><tr><th>pairs</th><th>genuine</th><th>impostor</th>${head}</tr>
${rows}
</table>
<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>
${roc}
${det}
<p>Curves: TPR is exact at every point; the threshold of a point is exact where its FPR lies within
the kept impostor tail and read from a histogram of sampled rows above it.</p>
</body></html>
`;
}

export interface ReportFiles {
  json: string;
  html: string;
  images: string[];
}

/** Writes result.json, curves.json, roc/det .svg and .png, and report.html into dir (created if needed). */
export async function writeReport(
  dir: string,
  ev: PairEvaluation,
  opts: { title?: string; notes?: readonly string[] } = {},
): Promise<ReportFiles> {
  fs.mkdirSync(dir, { recursive: true });
  const put = (name: string, data: string | Uint8Array): string => {
    const file = path.join(dir, name);
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    T.writeAtomic(file, (fd) => fs.writeSync(fd, bytes));
    return file;
  };
  const images: string[] = [];
  const svgs: string[] = [];
  for (const kind of ["roc", "det"] as const) {
    const svg = await curveSvg(curveData(ev), kind);
    svgs.push(svg);
    images.push(put(`${kind}.svg`, svg), put(`${kind}.png`, await sharp(Buffer.from(svg)).png().toBuffer()));
  }
  const json = put("result.json", evaluationJson(ev) + "\n");
  put(CURVES_FILE, JSON.stringify(curveData(ev)) + "\n");
  const page = put(
    "report.html",
    html(ev, opts.title ?? "mfr verification report", opts.notes ?? [], svgs[0]!, svgs[1]!),
  );
  return { json, html: page, images };
}
