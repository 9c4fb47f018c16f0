// Weights move between arcface_torch and mfr: a PyTorch-made backbone.pth (tiny, random weights,
// arcface_torch's key names; see fixtures/models/make_fixture.py) loads and gives PyTorch's
// embeddings, our state dicts load back in PyTorch (with weights_only, torch.load's default since
// 2.6), and state dicts round-trip through safetensors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as T from "../../src/torch/index.ts";
import { type Backbone, buildBackbone, foldBatchNorm } from "../../src/models/index.ts";

const dir = fileURLToPath(new URL("../fixtures/models/", import.meta.url));
const fixture = (f: string): string => path.join(dir, f);
const TINY = {
  iresnet: () => buildBackbone([1, 2, 1, 1], { width: 1 / 8, numFeatures: 32 }),
  mbf: () => buildBackbone("mbf", { width: 1 / 8, numFeatures: 32 }),
} as const;
const PYTHON = "/usr/bin/python3";
const hasTorch = spawnSync(PYTHON, ["-c", "import torch"]).status === 0;

function maxAbsDiff(a: T.Tensor, b: T.Tensor): number {
  return T.scope(() => a.sub(b).abs().max().item());
}

function loaded(kind: keyof typeof TINY): Backbone {
  const m = TINY[kind]();
  const sd = T.loadPthStateDict(fixture(`tiny_${kind}.pth`));
  assert.deepEqual([...m.stateDict().keys()], [...sd.keys()], "same keys in the same order as PyTorch");
  m.loadStateDict(sd);
  for (const t of sd.values()) t.dispose();
  return m.eval();
}

for (const kind of ["iresnet", "mbf"] as const) {
  test(`${kind}: an arcface_torch-format .pth reproduces PyTorch's embeddings`, () => {
    const m = loaded(kind);
    T.scope(() => {
      const x = T.loadNpy(fixture("input.npy"));
      const want = T.loadNpy(fixture(`tiny_${kind}_emb.npy`));
      const got = T.noGrad(() => m.forward(x));
      assert.ok(maxAbsDiff(got, want) <= 1e-4, `max abs diff ${maxAbsDiff(got, want)}`);
    });
    m.dispose();
  });

  test(`${kind}: BatchNorm folding keeps eval outputs within 1e-4`, () => {
    const m = loaded(kind);
    T.scope(() => {
      const x = T.loadNpy(fixture("input.npy"));
      const before = T.noGrad(() => m.forward(x));
      const bns = m.namedModules().filter(([, c]) => c.constructor.name.startsWith("BatchNorm")).length;
      foldBatchNorm(m);
      const left = m.namedModules().filter(([, c]) => c.constructor.name.startsWith("BatchNorm")).length;
      assert.ok(left < bns, `folded ${bns - left} of ${bns} BatchNorms`);
      if (kind === "mbf") assert.equal(left, 0, "every MobileFaceNet BN follows a conv or linear");
      const after = T.noGrad(() => m.forward(x));
      assert.ok(maxAbsDiff(before, after) <= 1e-4, `max abs diff ${maxAbsDiff(before, after)}`);
    });
    m.dispose();
  });

  test(`${kind}: a state dict saved by mfr loads in PyTorch (strict) with the same embeddings`, () => {
    // Not a skip: CI must check arcface_torch compatibility on every run (bootstrap installs it).
    assert.ok(
      hasTorch,
      `${PYTHON} cannot import torch: scripts/bootstrap.sh installs Debian's python3-torch`,
    );
    const tmp = mkdtempSync(path.join(tmpdir(), "mfr-interop-"));
    try {
      T.manualSeed(3);
      const m = TINY[kind]();
      // A few training forwards give the BN statistics values of their own.
      T.scope(() => {
        for (let i = 0; i < 2; i++) T.noGrad(() => m.forward(T.randn([4, 3, 112, 112])));
      });
      m.eval();
      T.savePth(path.join(tmp, "backbone.pth"), m.stateDict());
      const r = spawnSync(
        PYTHON,
        [
          fixture("make_fixture.py"),
          "embed",
          kind,
          path.join(tmp, "backbone.pth"),
          path.join(tmp, "emb.npy"),
        ],
        { encoding: "utf8" },
      );
      assert.equal(r.status, 0, r.stderr);
      T.scope(() => {
        const got = T.noGrad(() => m.forward(T.loadNpy(fixture("input.npy"))));
        const want = T.loadNpy(path.join(tmp, "emb.npy"));
        assert.ok(maxAbsDiff(got, want) <= 1e-4, `max abs diff ${maxAbsDiff(got, want)}`);
      });
      m.dispose();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test("torch.load with weights_only (PyTorch >= 2.6's default) reads mfr's .pth: every dtype, same values", () => {
  assert.ok(hasTorch, `${PYTHON} cannot import torch: scripts/bootstrap.sh installs Debian's python3-torch`);
  const tmp = mkdtempSync(path.join(tmpdir(), "mfr-pth-"));
  try {
    T.manualSeed(5);
    const sd = new Map<string, T.Tensor>([
      ["f32", T.randn([2, 3])],
      ["f64", T.randn([3]).to("f64")],
      ["f16", T.randn([4]).to("f16")],
      ["bf16", T.randn([2, 2]).to("bf16")],
      ["i64", T.tensor([2 ** 40, -3], { dtype: "i64" })],
      ["i32", T.tensor([-(2 ** 31), 7], { dtype: "i32" })],
      ["i16", T.tensor([-300], { dtype: "i16" })],
      ["i8", T.tensor([-5, 5], { dtype: "i8" })],
      ["u8", T.tensor([0, 255], { dtype: "u8" })],
      ["bool", T.tensor([1, 0], { dtype: "bool" })],
      ["scalar", T.scalarTensor(9, { dtype: "i64" })],
      ["view", T.randn([3, 4]).transpose(0, 1)],
    ]);
    const file = path.join(tmp, "sd.pth");
    T.savePth(file, sd);
    const script = [
      "import collections, json, sys, torch",
      "sd = torch.load(sys.argv[1], weights_only=True)",
      "assert type(sd) is collections.OrderedDict, type(sd)",
      "print(json.dumps({k: [str(v.dtype), list(v.shape), v.float().flatten().tolist()] for k, v in sd.items()}))",
    ].join("\n");
    const r = spawnSync(PYTHON, ["-c", script, file], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as Record<string, [string, number[], number[]]>;
    const names: Record<T.DType, string> = {
      f32: "float32",
      f64: "float64",
      f16: "float16",
      bf16: "bfloat16",
      i64: "int64",
      i32: "int32",
      i16: "int16",
      i8: "int8",
      u8: "uint8",
      bool: "bool",
    };
    assert.deepEqual(Object.keys(got), [...sd.keys()], "same keys in the same order");
    for (const [k, t] of sd) {
      assert.deepEqual(
        got[k],
        [`torch.${names[t.dtype]}`, [...t.shape], t.float().contiguous().toArray()],
        k,
      );
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("a backbone's state dict round-trips bit-exactly through safetensors", () => {
  const tmp = mkdtempSync(path.join(tmpdir(), "mfr-st-"));
  try {
    const a = loaded("iresnet");
    const file = path.join(tmp, "backbone.safetensors");
    T.saveSafetensors(file, a.stateDict());
    const b = TINY.iresnet();
    const { tensors } = T.loadSafetensors(file);
    b.loadStateDict(tensors);
    for (const t of tensors.values()) t.dispose();
    for (const [k, t] of a.stateDict()) {
      const u = b.stateDict().get(k)!;
      assert.equal(t.dtype, u.dtype, k);
      assert.deepEqual(Buffer.from(t.data().buffer), Buffer.from(u.data().buffer), k);
    }
    a.dispose();
    b.dispose();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
