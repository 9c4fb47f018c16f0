// `mfr doctor` as users run it: the facts it prints are this machine's, and a broken requirement
// (here: an addon built for another libtorch than the one asked for) exits non-zero, naming it.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import * as T from "../../src/torch/index.ts";
import { mfr } from "../helpers/mfr.ts";

const parse = (stdout: string): Map<string, T.Check> =>
  new Map((JSON.parse(stdout) as T.Check[]).map((c) => [c.name, c]));

test("mfr doctor reports this machine's libtorch, threads, heap and an up-to-date addon", async () => {
  const [json, text, stale] = await Promise.all([
    mfr(["doctor", "--json"], { env: { MFR_NUM_THREADS: "2" } }),
    mfr(["doctor"]),
    // The addon here was built for Debian's libtorch; asking for another makes it stale.
    mfr(["doctor", "--json"], { env: { MFR_LIBTORCH: "/nonexistent/torch" } }),
  ]);
  assert.equal(json.code, 0, json.stderr);
  const checks = parse(json.stdout);
  const lib = checks.get("libtorch")!;
  assert.match(lib.detail, new RegExp(`^${T.buildInfo().torchVersion.replaceAll(".", "\\.")} `));
  const libPath = / at (\S+)$/.exec(lib.detail)![1]!;
  assert.ok(fs.existsSync(libPath), `${libPath} should be the loaded libtorch_cpu`);
  assert.match(checks.get("threads")!.detail, /intra-op 2,.*MFR_NUM_THREADS=2/);
  assert.match(checks.get("heap")!.detail, /glibc\.malloc\.hugetlb=1/);
  assert.equal(checks.get("addon")!.status, "ok");
  assert.match(checks.get("addon")!.detail, /up to date/);
  assert.equal(checks.get("Node")!.status, "ok");
  assert.ok(checks.has("CUDA") && checks.has("NCCL") && checks.has("PyTorch"));

  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^ok +libtorch +\d/m);
  assert.match(text.stdout, /^ok +addon .*up to date$/m);

  assert.equal(stale.code, 1);
  assert.equal(parse(stale.stdout).get("addon")!.status, "fail");
  assert.match(parse(stale.stdout).get("addon")!.detail, /stale: .*npm run build:native/);
  assert.match(stale.stderr, /^mfr doctor: addon broken/m);
});
