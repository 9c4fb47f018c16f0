// report.html for a run: training curves, verification over time, ROC/DET per evaluation, the
// resolved config, versions and machine, in one file that opens offline.
// The charts are Vega-Lite specs rendered to SVG here, at generation time, by the same code that
// draws mfr eval's curves (src/eval chartSvg), rather than by a charting script inlined into the
// page (uPlot would be ~50 KB): the page then runs no script at all, so it opens offline, in any
// browser, prints, and cannot fail at view time; Vega is a dependency already, and one way of
// drawing a chart serves both reports.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TopLevelSpec } from "vega-lite";
import * as T from "../torch/index.ts";
import { chartSvg, curveSvg } from "../eval/index.ts";
import type { RunData, StepRecord } from "./run.ts";

interface Row {
  step: number;
  value: number;
  series: string;
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

function lineSpec(
  title: string,
  yTitle: string,
  rows: Row[],
  o: { log?: boolean; points?: boolean } = {},
): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: 400,
    height: 220,
    data: { values: rows },
    // A series of one point (one verification so far) draws no line: points make it visible.
    mark: { type: "line", point: o.points ?? false },
    encoding: {
      x: { field: "step", type: "quantitative", title: "step" },
      y: {
        field: "value",
        type: "quantitative",
        title: yTitle,
        scale: o.log ? { type: "log" } : { zero: false },
        // SI prefixes: a log axis over powers of two otherwise labels every minor tick in full.
        ...(o.log ? { axis: { format: "~s" } } : {}),
      },
      color: { field: "series", type: "nominal", title: null },
    },
  };
}

/** Rows of the step records' fields that are present, one series per field. */
function series(steps: readonly StepRecord[], fields: Partial<Record<keyof StepRecord, string>>): Row[] {
  return Object.entries(fields).flatMap(([field, name]) =>
    steps.flatMap((s) => {
      const v = s[field as keyof StepRecord];
      return typeof v === "number" ? [{ step: s.step, value: v, series: name! }] : [];
    }),
  );
}

interface Chart {
  title: string;
  svg: string;
}

async function trainingCharts(run: RunData): Promise<Chart[]> {
  const specs: TopLevelSpec[] = [];
  const s = run.steps;
  if (s.length) {
    const distilled = s.some((r) => r.ce !== undefined || r.distill !== undefined);
    specs.push(
      lineSpec(
        distilled ? "Loss, margin CE and distillation" : "Loss",
        "loss",
        series(s, { loss: "loss", ce: "margin CE", distill: "distillation" }),
      ),
      lineSpec("Learning rate", "learning rate", series(s, { lr: "lr" })),
      lineSpec("Throughput", "images / s", series(s, { imagesPerSec: "images/s" })),
    );
    if (s.some((r) => r.lossScale !== undefined))
      specs.push(lineSpec("Loss scale", "loss scale", series(s, { lossScale: "loss scale" }), { log: true }));
  }
  const sets = [...new Set(run.verify.map((v) => v.set))];
  for (const set of sets) {
    const rows = run.verify
      .filter((v) => v.set === set)
      .flatMap((v) => Object.entries(v.results).map(([k, value]) => ({ step: v.step, value, series: k })))
      // 10-fold sets also log the accuracy's spread and the embeddings' norm: other scales.
      .filter((r) => r.series !== "std" && r.series !== "xnorm");
    if (rows.length) specs.push(lineSpec(`Verification: ${set}`, "TPR / accuracy", rows, { points: true }));
  }
  const charts: Chart[] = [];
  for (const spec of specs) charts.push({ title: String(spec.title), svg: await chartSvg(spec) });
  return charts;
}

const fmt = (v: number | null | undefined): string => (typeof v === "number" ? v.toFixed(5) : "–");

async function evalSection(run: RunData): Promise<string> {
  if (!run.evals.length)
    return `<p class="none">No evaluation in this run folder yet: <code>mfr eval --model … --data … --report ${esc(path.join(run.dir, "eval"))}</code> adds one.</p>`;
  const parts: string[] = [];
  for (const e of run.evals) {
    const keys = e.curves.fprKeys;
    const rows = Object.entries(e.result.subsets)
      .map(
        ([name, s]) =>
          `<tr><td>${esc(name)}</td><td>${s.genuine}</td><td>${s.impostor}</td>${keys.map((k) => `<td>${fmt(s.tpr[k])}</td>`).join("")}</tr>`,
      )
      .join("\n");
    const charts = [
      { title: `ROC (${e.name})`, svg: await curveSvg(e.curves, "roc") },
      { title: `DET (${e.name})`, svg: await curveSvg(e.curves, "det") },
    ];
    parts.push(`<h3>${esc(e.name)}</h3>
<table><tr><th>pairs</th><th>genuine</th><th>impostor</th>${keys.map((k) => `<th>TPR@${esc(k)}</th>`).join("")}</tr>
${rows}</table>
${figures(charts)}`);
  }
  return parts.join("\n");
}

const figures = (charts: readonly Chart[]): string =>
  `<div class="charts">${charts
    .map((c) => `<figure class="chart" data-title="${esc(c.title)}">${c.svg}</figure>`)
    .join("\n")}</div>`;

/** Versions and machine of the process writing the report (where run.json does not say). */
function environment(): Record<string, string> {
  const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../package.json");
  const info = T.buildInfo();
  const cpus = os.cpus();
  return {
    mfr: (JSON.parse(fs.readFileSync(pkg, "utf8")) as { version: string }).version,
    node: process.version,
    libtorch: `${info.torchVersion} (${info.cuda ? "CUDA" : "CPU"} build)`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: `${cpus.length} × ${cpus[0]?.model ?? "unknown"}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    host: os.hostname(),
  };
}

const table = (o: Record<string, unknown>): string =>
  `<table class="kv">${Object.entries(o)
    .map(
      ([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === "string" ? v : JSON.stringify(v))}</td></tr>`,
    )
    .join("")}</table>`;

function summary(run: RunData): string {
  const s = run.steps;
  if (!s.length) return "<p>No training steps logged.</p>";
  const first = s[0]!;
  const last = s.at(-1)!;
  const rates = s.map((r) => r.imagesPerSec).sort((a, b) => a - b);
  return `<p>Steps ${first.step}–${last.step} logged; loss ${first.loss.toFixed(4)} → ${last.loss.toFixed(4)};
median ${rates[rates.length >> 1]!.toFixed(1)} images/s.</p>`;
}

/** The report page for the run's data; `config` is shown when run.json does not hold one. */
export async function renderRunReport(run: RunData, o: { config?: unknown } = {}): Promise<string> {
  const config = run.run?.config ?? o.config;
  const recorded = Object.fromEntries(Object.entries(run.run ?? {}).filter(([k]) => k !== "config"));
  const title = `mfr run: ${path.basename(path.resolve(run.dir))}`;
  const training = await trainingCharts(run);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1240px}
.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,.kv th{text-align:left}.kv td{text-align:left;font-family:monospace}
pre{background:#f6f6f6;padding:1em;overflow:auto;max-height:30em}.none{color:#666}
</style></head><body>
<h1>${esc(title)}</h1>
<p>Run folder <code>${esc(path.resolve(run.dir))}</code>; report written ${esc(new Date().toISOString())}.
Rebuild with <code>mfr report ${esc(run.dir)}</code>.</p>
<h2>Training</h2>
${summary(run)}
${training.length ? figures(training) : '<p class="none">Nothing to draw yet.</p>'}
<h2>Evaluation</h2>
${await evalSection(run)}
<h2>Configuration</h2>
${config === undefined ? '<p class="none">Not recorded (no run.json in the run folder).</p>' : `<pre>${esc(JSON.stringify(config, null, 2))}</pre>`}
<h2>Versions and machine</h2>
${Object.keys(recorded).length ? `<h3>Recorded with the run (run.json)</h3>${table(recorded)}<h3>Report written on</h3>` : ""}
${table(environment())}
</body></html>
`;
}
