import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { HUGE_PAGE_TUNABLE, heapEnv, startedWithHeapEnv } from "../../src/torch/heap.ts";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");
const linux = process.platform === "linux";

test("heapEnv adds the huge-page tunable, keeps the user's tunables and never overrides them", () => {
  const bare: NodeJS.ProcessEnv = { PATH: "/bin" };
  const out = heapEnv(bare);
  if (!linux) return assert.equal(out, bare);
  assert.equal(out.GLIBC_TUNABLES, HUGE_PAGE_TUNABLE);
  assert.equal(out.PATH, "/bin");
  assert.equal(bare.GLIBC_TUNABLES, undefined, "the given env is not changed");
  assert.ok(!startedWithHeapEnv(bare) && startedWithHeapEnv(out));
  const other = heapEnv({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" });
  assert.equal(other.GLIBC_TUNABLES, `glibc.malloc.arena_max=2:${HUGE_PAGE_TUNABLE}`);
  const mine = { GLIBC_TUNABLES: "glibc.malloc.hugetlb=0" };
  assert.equal(heapEnv(mine), mine);
  const off = { MFR_MALLOC_TUNING: "0" };
  assert.equal(heapEnv(off), off);
});

test("bin/mfr.js restarts itself with the heap settings and exits as the command did", () => {
  // A preload in NODE_OPTIONS runs in every Node process: it prints what each one was started with.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mfr-heap-"));
  const preload = path.join(dir, "show.mjs");
  fs.writeFileSync(preload, 'process.stderr.write(`tunables=${process.env.GLIBC_TUNABLES ?? "none"}\\n`);\n');
  const run = (env: NodeJS.ProcessEnv, args: string[]) => {
    const r = spawnSync(process.execPath, ["bin/mfr.js", ...args], {
      cwd: root,
      encoding: "utf8",
      env: { ...env, NODE_OPTIONS: `--import ${preload}` },
    });
    return { status: r.status, lines: r.stderr.split("\n").filter((l) => l.startsWith("tunables=")), r };
  };
  const { GLIBC_TUNABLES: _drop, MFR_MALLOC_TUNING: _drop2, ...env } = process.env;
  const ok = run(env, ["help"]);
  assert.equal(ok.status, 0, ok.r.stderr);
  assert.deepEqual(ok.lines, linux ? ["tunables=none", `tunables=${HUGE_PAGE_TUNABLE}`] : ["tunables=none"]);
  const failed = run(env, ["eval", "--embeddings", path.join(dir, "missing.npy"), "--labels", "x.npy"]);
  assert.equal(failed.status, 1);
  assert.match(failed.r.stderr, /missing\.npy/);
  const off = run({ ...env, MFR_MALLOC_TUNING: "0" }, ["help"]);
  assert.deepEqual(off.lines, ["tunables=none"], "no restart when tuning is off");
  fs.rmSync(dir, { recursive: true, force: true });
});
