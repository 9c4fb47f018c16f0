// The MFR challenge's submission rules: an mfr export passes all four; hand-made models that break
// one rule each fail exactly that rule, and `mfr export --check-mfr` exits non-zero naming it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  DataType,
  type ModelMsg,
  MFR_RULES,
  assertMfrRules,
  checkMfrRules,
  encodeModel,
  decodeModel,
  attr,
} from "../../src/export/index.ts";
import { mfr, mfrOk, tinyCheckpoint } from "./helpers.ts";

let dir = "";
before(() => (dir = mkdtempSync(path.join(tmpdir(), "mfr-rules-"))));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Spec {
  input?: number[];
  outputs?: number;
  weightType?: number;
  nodes?: number;
}

/** A small valid-looking recognition graph: Conv, then a chain of Relus, one or more outputs. */
function model(s: Spec = {}): ModelMsg {
  const input = s.input ?? [3, 112, 112];
  const weightType = s.weightType ?? DataType.FLOAT;
  const elem = weightType === DataType.FLOAT16 ? 2 : weightType === DataType.INT8 ? 1 : 4;
  const nodes: ModelMsg["graph"]["node"] = [
    {
      name: "conv",
      opType: "Conv",
      input: ["input", "w"],
      output: ["h0"],
      attribute: [attr.ints("kernel_shape", [1, 1])],
    },
  ];
  for (let i = 1; i < (s.nodes ?? 10); i++)
    nodes.push({ name: `relu${i}`, opType: "Relu", input: [`h${i - 1}`], output: [`h${i}`] });
  const last = `h${nodes.length - 1}`;
  const vi = (name: string, dims: (number | string)[]) => ({
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
  const outputs = Array.from({ length: s.outputs ?? 1 }, (_, i) =>
    vi(i === 0 ? last : "h0", ["batch", 4, input[1]!, input[2]!]),
  );
  return {
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    producerName: "test",
    producerVersion: "0",
    graph: {
      name: "g",
      node: nodes,
      initializer: [
        {
          name: "w",
          dims: [4, input[0]!, 1, 1],
          dataType: weightType,
          rawData: new Uint8Array(4 * input[0]! * elem),
        },
      ],
      input: [vi("input", ["batch", ...input])],
      output: outputs,
    },
    metadataProps: [],
  };
}

const failing = (m: ModelMsg): string[] =>
  checkMfrRules(decodeModel(encodeModel(m)))
    .filter((r) => !r.ok)
    .map((r) => r.rule);

test("a compliant graph passes all four rules", () => {
  const results = checkMfrRules(decodeModel(encodeModel(model())));
  assert.deepEqual(
    results.map((r) => r.rule),
    Object.keys(MFR_RULES),
  );
  assert.ok(results.every((r) => r.ok));
});

test("each broken rule is reported, and only that one", () => {
  assert.deepEqual(failing(model({ input: [3, 96, 96] })), ["input-3x112x112"]);
  assert.deepEqual(failing(model({ input: [1, 112, 112] })), ["input-3x112x112"]);
  assert.deepEqual(failing(model({ outputs: 2 })), ["one-output"]);
  assert.deepEqual(failing(model({ weightType: DataType.FLOAT16 })), ["fp32-initialisers"]);
  assert.deepEqual(failing(model({ weightType: DataType.INT8 })), ["fp32-initialisers"]);
  assert.deepEqual(failing(model({ nodes: 7 })), ["min-8-nodes"]);
  assert.deepEqual(failing(model({ nodes: 8 })), []);
  assert.throws(
    () => assertMfrRules(decodeModel(encodeModel(model({ nodes: 3 }))), "tiny.onnx"),
    /tiny\.onnx breaks the MFR submission rules: rule 'min-8-nodes' \(at least 8 nodes\) failed: 3 nodes/,
  );
});

test("mfr export --check-mfr: passes an mfr export, fails a model that breaks a rule, naming it", () => {
  const ck = tinyCheckpoint("mbf", dir);
  const out = path.join(dir, "mbf.onnx");
  const ok = mfrOk("export", "--model", ck, "--out", out, "--fold-bn", "--check-mfr");
  for (const rule of Object.keys(MFR_RULES)) assert.match(ok, new RegExp(`ok\\s+${rule}`));
  assert.match(ok, /folded: 50 -> 0 BatchNorm layers/);

  const bad = path.join(dir, "fp16.onnx");
  writeFileSync(bad, encodeModel(model({ weightType: DataType.FLOAT16, input: [3, 96, 96] })));
  const r = mfr("export", "--model", bad, "--check-mfr");
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /FAIL\s+fp32-initialisers/);
  assert.match(r.stderr, /rule 'input-3x112x112' .* failed: 'input' FLOAT \[batch, 3, 96, 96\]/);
  assert.match(r.stderr, /rule 'fp32-initialisers' .* failed: 1 non-fp32 weight tensors, e\.g\. 'w' FLOAT16/);
});
