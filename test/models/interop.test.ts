// Weights move between arcface_torch and mfr: a PyTorch-made backbone.pth (tiny, random weights,
// arcface_torch's key names; see fixtures/models/make_fixture.py) loads and gives PyTorch's
// embeddings, our state dict loads back in PyTorch, and state dicts round-trip through safetensors.
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
