// Data-parallel training over 2 ranks equals one process on the concatenated batch.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch, wireDtype } from "../../src/distributed/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

async function run(mode: string): Promise<Record<string, unknown>[]> {
  const job = await launch({
    nprocPerNode: 2,
    argv: [path.join(here, "worker-dp.ts")],
    execArgv: ["--import", "tsx"],
    env: { ...process.env, TEST_DP_MODE: mode },
    stdio: "pipe",
  });
  const out: Record<string, unknown>[] = [];
  const errs: string[] = [];
  for (const c of job.children) {
    let buf = "";
    c.stdout!.on("data", (d: Buffer) => (buf += d.toString()));
    c.stdout!.on("end", () =>
      buf
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .forEach((l) => out.push(JSON.parse(l) as Record<string, unknown>)),
    );
    c.stderr!.on("data", (d: Buffer) => errs.push(d.toString()));
  }
  const r = await job.result;
  await new Promise((res) => setTimeout(res, 50));
  assert.equal(r.exitCode, 0, `${r.message}\n${errs.join("")}`);
  return out;
}

for (const [mode, tol, overlapped] of [
  ["overlap", 1e-5, true],
  ["post", 1e-5, false],
  ["fp16", 2e-3, true],
  ["fp16-post", 2e-3, false],
] as const) {
  test(`3 data-parallel SGD steps on 2 ranks equal one process (${mode})`, async () => {
    const lines = await run(mode);
    assert.equal(lines.length, 2);
    for (const l of lines) {
      assert.equal(l.overlapped, overlapped);
      assert.ok((l.maxRel as number) <= tol, `rank ${l.rank}: max relative difference ${l.maxRel}`);
    }
  });
}

test("bf16 gradient compression on 2 Gloo ranks is refused before any step, with the reason", async () => {
  const lines = await run("bf16");
  assert.equal(lines.length, 2);
  for (const l of lines) assert.match(String(l.refused), /dist\.compress: bf16 needs NCCL.*use 'fp16'/);
});

test("the wire dtype follows dist.compress; bf16 only where the backend carries it", () => {
  assert.equal(wireDtype("none", { backend: "gloo" }), "f32");
  assert.equal(wireDtype("fp16", { backend: "gloo" }), "f16");
  assert.equal(wireDtype("bf16", { backend: "nccl" }), "bf16");
  assert.equal(wireDtype("bf16", { backend: "none" }), "bf16");
  assert.throws(() => wireDtype("bf16", { backend: "gloo" }), /Gloo/);
});
