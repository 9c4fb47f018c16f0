// The Masked Face Recognition challenge's submission rules (ICCV 2021, WebFace260M track), checked
// on any ONNX file, whoever wrote it: one input of 3×112×112 float images, exactly one output,
// fp32 weights only, at least 8 nodes.
//
// "fp32 weights only" is read as: no initialiser (or Constant) holds weights in another floating or
// quantised type (float16, bfloat16, float64, int8, uint8…). 64/32-bit integer tensors are shapes,
// axes and indices, not weights (PyTorch's exporter writes them for Reshape), and pass.
import {
  AttributeType,
  DATA_TYPE_NAMES,
  DataType,
  type DimMsg,
  type ModelMsg,
  type TensorMsg,
} from "./onnx-proto.ts";

export interface RuleResult {
  /** Stable identifier, e.g. "input-3x112x112". */
  rule: string;
  /** What the rule asks, in words. */
  description: string;
  ok: boolean;
  /** What was found. */
  detail: string;
}

export const MFR_RULES = {
  "input-3x112x112": "one input, float32 [batch, 3, 112, 112]",
  "one-output": "exactly one output",
  "fp32-initialisers": "weights (initialisers and constants) in float32 only",
  "min-8-nodes": "at least 8 nodes",
} as const;

const MIN_NODES = 8;
const INDEX_TYPES = new Set<number>([DataType.INT64, DataType.INT32]);

const dimText = (d: DimMsg | undefined): string =>
  d === undefined
    ? "?"
    : "dimValue" in d && d.dimValue !== undefined
      ? String(d.dimValue)
      : ((d as { dimParam?: string }).dimParam ?? "?");

/** Checks each rule and says what it found; never throws for a rule that fails. */
export function checkMfrRules(model: ModelMsg): RuleResult[] {
  const g = model.graph;
  const out: RuleResult[] = [];
  const result = (rule: keyof typeof MFR_RULES, ok: boolean, detail: string): void => {
    out.push({ rule, description: MFR_RULES[rule], ok, detail });
  };

  // Before IR 4, initialisers were also listed as inputs: those are not inputs a caller feeds.
  const initNames = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((v) => !initNames.has(v.name));
  if (inputs.length !== 1) {
    result(
      "input-3x112x112",
      false,
      `${inputs.length} inputs (${inputs.map((v) => v.name).join(", ") || "none"})`,
    );
  } else {
    const t = inputs[0]!.type?.tensorType;
    const dims = t?.shape?.dim ?? [];
    const text = `'${inputs[0]!.name}' ${DATA_TYPE_NAMES[t?.elemType ?? 0] ?? t?.elemType} [${dims.map(dimText).join(", ")}]`;
    const fixed = (d: DimMsg | undefined, v: number): boolean =>
      d !== undefined && "dimValue" in d && Number(d.dimValue) === v;
    const ok =
      t?.elemType === DataType.FLOAT &&
      dims.length === 4 &&
      fixed(dims[1], 3) &&
      fixed(dims[2], 112) &&
      fixed(dims[3], 112);
    result("input-3x112x112", ok, text);
  }

  result(
    "one-output",
    g.output.length === 1,
    `${g.output.length} output${g.output.length === 1 ? "" : "s"} (${g.output.map((v) => v.name).join(", ")})`,
  );

  const tensors: TensorMsg[] = [...g.initializer];
  for (const n of g.node)
    if (n.opType === "Constant")
      for (const a of n.attribute ?? []) if (a.type === AttributeType.TENSOR && a.t) tensors.push(a.t);
  const offending = tensors.filter((t) => t.dataType !== DataType.FLOAT && !INDEX_TYPES.has(t.dataType));
  const floats = tensors.filter((t) => t.dataType === DataType.FLOAT).length;
  result(
    "fp32-initialisers",
    offending.length === 0,
    offending.length === 0
      ? `${floats} float32 tensors${tensors.length > floats ? `, ${tensors.length - floats} int32/int64 index tensors` : ""}`
      : `${offending.length} non-fp32 weight tensors, e.g. ${offending
          .slice(0, 3)
          .map((t) => `'${t.name}' ${DATA_TYPE_NAMES[t.dataType] ?? t.dataType}`)
          .join(", ")}`,
  );

  result("min-8-nodes", g.node.length >= MIN_NODES, `${g.node.length} nodes`);
  return out;
}

/** A message naming every rule that failed and what was found, or undefined when all passed. */
export function rulesFailure(results: readonly RuleResult[], source = "model"): string | undefined {
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) return undefined;
  return `${source} breaks the MFR submission rules: ${failed
    .map((r) => `rule '${r.rule}' (${r.description}) failed: ${r.detail}`)
    .join("; ")}`;
}

/** Throws an Error naming every rule that fails (and what was found), else returns the results. */
export function assertMfrRules(model: ModelMsg, source = "model"): RuleResult[] {
  const results = checkMfrRules(model);
  const failure = rulesFailure(results, source);
  if (failure !== undefined) throw new Error(failure);
  return results;
}
