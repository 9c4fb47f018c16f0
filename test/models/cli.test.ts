// `mfr models` prints every preset with its parameter count and compute.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PRESET_NAMES, type PresetRow } from "../../src/models/index.ts";

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const mfr = (...args: string[]): string => {
  const r = spawnSync(process.execPath, ["--import", "tsx", main, "models", ...args], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
};

test("mfr models: a table row per preset, and JSON on request", () => {
  const table = mfr();
  for (const name of PRESET_NAMES) assert.match(table, new RegExp(`^${name}\\s`, "m"));
  assert.match(table, /^r100\s+iresnet\s+3\/13\/30\/3\s+65\.16\s+12\.09/m);
  const rows = JSON.parse(mfr("--json", "--width", "0.125")) as PresetRow[];
  assert.deepEqual(
    rows.map((r) => r.name),
    PRESET_NAMES,
  );
  assert.ok(rows.every((r) => r.params > 0 && r.macs > 0));
});
