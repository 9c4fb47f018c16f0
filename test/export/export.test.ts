// export -> onnxruntime-node -> the same embeddings as mfr's eval forward, for r18 and mbf at width
// 1/8, with and without BatchNorm folding; dynamic and fixed batch; opsets at both ends of the
// range; the file passes Python's onnx checker (full check, with shape inference) when it is there.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadBackboneCheckpoint } from "../../src/models/index.ts";
import {
  OnnxSession,
  compareEmbeddings,
  decodeModel,
  exportCheckpoint,
  mfrForward,
  randomImages,
  syntheticFaces,
} from "../../src/export/index.ts";
import { openEmbedder } from "../../src/eval/index.ts";
import { tinyCheckpoint } from "./helpers.ts";

let dir = "";
const ckpt: Record<string, string> = {};
const exported: string[] = [];

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "mfr-export-"));
  for (const name of ["r18", "mbf"]) ckpt[name] = tinyCheckpoint(name, dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** ONNX (onnxruntime-node) vs mfr (libtorch, the checkpoint as saved, unfolded) on fresh inputs. */
async function agreement(onnx: string, checkpoint: string, images: Float32Array, n: number) {
  const { model } = loadBackboneCheckpoint(checkpoint);
  const want = mfrForward(model, images, n);
  model.dispose();
  const s = await OnnxSession.open(onnx);
  const { data, dims } = await s.run(images, [n, 3, 112, 112]);
  await s.close();
  assert.deepEqual(dims, [n, 32]);
  return compareEmbeddings(data, want, 32);
}

for (const name of ["r18", "mbf"] as const) {
  for (const fold of [false, true]) {
    test(`${name}${fold ? ", BatchNorm folded" : ""}: onnxruntime-node gives mfr's embeddings at any batch size`, async () => {
      const out = path.join(dir, `${name}${fold ? "-folded" : ""}.onnx`);
      const r = await exportCheckpoint({ checkpoint: ckpt[name]!, out, foldBatchNorm: fold, checkMfr: true });
      exported.push(out);
      assert.ok(r.ok, JSON.stringify(r.verification));
      assert.deepEqual(
        r.verification!.map((c) => c.batch),
        [3, 1, 4],
        "random batches of 3 and 1 and 4 faces through one session",
      );
      for (const c of r.verification!) {
        assert.ok(c.maxAbsDiff <= 1e-4, `${c.name}: max abs diff ${c.maxAbsDiff}`);
        assert.ok(c.minCosine >= 0.99999, `${c.name}: cosine ${c.minCosine}`);
      }
      // Independently of the built-in check: other inputs, another batch size.
      for (const [images, n] of [
        [randomImages(5, 11), 5],
        [syntheticFaces(2, 3), 2],
      ] as const) {
        const a = await agreement(out, ckpt[name]!, images, n);
        assert.ok(a.maxAbsDiff <= 1e-4 && a.minCosine >= 0.99999, JSON.stringify(a));
      }
      const bnNodes = r.info.ops.BatchNormalization ?? 0;
      if (!fold) assert.equal(bnNodes, r.batchNorms.before, "one BatchNormalization per BatchNorm layer");
      // MobileFaceNet's BNs all follow a conv or the FC; an IR block's first BN precedes its conv
      // (and zero padding), so it stays: one per block, 8 in r18.
      else assert.equal(bnNodes, name === "mbf" ? 0 : 8);
      assert.equal(r.info.outputShape.join(), "batch,32");
      const m = decodeModel(readFileSync(out));
      const meta = Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]));
      assert.equal(meta["mfr.backbone"], name);
      assert.equal(meta["mfr.embedding_size"], "32");
      assert.equal(meta["mfr.bn_folded"], String(fold));
      assert.equal(meta["mfr.input_normalisation"], "(x - 127.5) / 127.5");
      assert.match(meta["mfr.version"]!, /^\d+\.\d+\.\d+/);
      assert.equal(m.producerName, "mfr");
    });
  }
}

test("fixed batch: the input is declared [N, 3, 112, 112] and other batch sizes are refused", async () => {
  const out = path.join(dir, "r18-b2.onnx");
  const r = await exportCheckpoint({ checkpoint: ckpt.r18!, out, foldBatchNorm: true, batch: 2 });
  assert.ok(r.ok);
  assert.deepEqual(
    r.verification!.map((c) => c.batch),
    [2, 2],
  );
  const s = await OnnxSession.open(out);
  assert.deepEqual(s.inputShape, [2, 3, 112, 112]);
  await assert.rejects(s.run(randomImages(3), [3, 3, 112, 112]));
  await s.close();
});

test("opsets 9 (Gemm with explicit zero bias, IR 4) and 21 (IR 10) export and verify", async () => {
  for (const opset of [9, 21]) {
    const out = path.join(dir, `mbf-opset${opset}.onnx`);
    const r = await exportCheckpoint({ checkpoint: ckpt.mbf!, out, opset });
    assert.ok(r.ok, `opset ${opset}: ${JSON.stringify(r.verification)}`);
    const m = decodeModel(readFileSync(out));
    assert.equal(m.opsetImport[0]!.version, opset);
    assert.equal(m.irVersion, opset === 9 ? 4 : 10);
  }
  await assert.rejects(
    exportCheckpoint({ checkpoint: ckpt.mbf!, out: path.join(dir, "x.onnx"), opset: 8 }),
    /opset 8/,
  );
});

test("external data: the weights go to <out>.data, and onnxruntime, mfr's embedder and the rules read it", async () => {
  const inline = path.join(dir, "mbf-inline.onnx");
  const out = path.join(dir, "mbf-external.onnx");
  await exportCheckpoint({ checkpoint: ckpt.mbf!, out: inline, verify: false });
  const r = await exportCheckpoint({ checkpoint: ckpt.mbf!, out, externalData: true, checkMfr: true });
  exported.push(out);
  assert.ok(r.ok, JSON.stringify([r.verification, r.rules]));
  assert.equal(r.externalData?.file, `${out}.data`);
  const m = decodeModel(readFileSync(out));
  const init = m.graph.initializer;
  assert.ok(init.length > 0 && init.every((t) => t.dataLocation === 1 && t.rawData === undefined));
  const ranges = init.map((t) => {
    const kv = Object.fromEntries(t.externalData!.map((e) => [e.key, e.value]));
    assert.equal(kv.location, "mbf-external.onnx.data");
    return [Number(kv.offset), Number(kv.length), t.dims.reduce((a, d) => a * d, 4)] as const;
  });
  // The tensors tile the data file, each as long as its shape says.
  let end = 0;
  for (const [offset, length, bytes] of ranges) {
    assert.equal(offset, end);
    assert.equal(length, bytes);
    end += length;
  }
  assert.equal(end, statSync(`${out}.data`).size);
  // The same weights, moved: the model file grows only by each initialiser's location entries.
  const moved = statSync(out).size + end - statSync(inline).size;
  assert.ok(moved > 0 && moved < 128 * init.length, `${moved} bytes more in all`);
  // mfr embed / eval --model read it as they read the inline export.
  const images = syntheticFaces(3, 5);
  const [a, b] = await Promise.all(
    [inline, out].map(async (f) => {
      const e = await openEmbedder(f);
      const v = await e.embed(images, 3);
      await e.close();
      return v;
    }),
  );
  assert.deepEqual(a, b);
  // Without its data file the model is refused by name.
  renameSync(`${out}.data`, `${out}.away`);
  await assert.rejects(openEmbedder(out), new RegExp(`${out}: its weights are in ${out}\\.data .*missing`));
  renameSync(`${out}.away`, `${out}.data`);
  assert.ok(existsSync(`${out}.data`));
});

const PYTHON = "/usr/bin/python3";
const hasOnnx = spawnSync(PYTHON, ["-c", "import onnx"]).status === 0;

test("Python's onnx checker accepts every export (full check with shape inference)", () => {
  assert.ok(hasOnnx, `${PYTHON} has no onnx module: scripts/bootstrap.sh installs Debian's python3-onnx`);
  assert.ok(exported.length >= 4, "runs after the export tests");
  const script = [
    "import sys, onnx",
    "for f in sys.argv[1:]:",
    "    onnx.checker.check_model(f, full_check=True)", // a path: external data is checked too
    "    m = onnx.load(f)",
    "    onnx.checker.check_model(m, full_check=True)",
    "    print(f, len(m.graph.node))",
  ].join("\n");
  const r = spawnSync(PYTHON, ["-c", script, ...exported], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split("\n").length, exported.length);
});
