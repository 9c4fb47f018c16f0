// `npm run bench [name ...]`: runs every bench/*.bench.ts (or the named ones) one after another,
// each in its own process so one benchmark's memory and threads do not colour the next, started
// with the heap settings every mfr process gets (src/torch/heap.ts); the PyTorch and numpy
// processes the benchmarks start inherit them, so both sides run on the same heap.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { heapEnv } from "../src/torch/heap.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .sort();
const wanted = process.argv.slice(2);
const chosen = wanted.length ? all.filter((f) => wanted.some((w) => f.startsWith(w))) : all;
if (chosen.length === 0) {
  console.error(`no benchmark matches ${wanted.join(", ")}; available: ${all.join(", ")}`);
  process.exit(1);
}
let failed = 0;
for (const f of chosen) {
  console.log(`\n=== ${f}`);
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(here, f)], {
    stdio: "inherit",
    env: heapEnv(),
  });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
