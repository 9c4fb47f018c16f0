// `mfr doctor`: what this machine gives mfr (libtorch, CUDA/NCCL, threads, heap, addon, PyTorch,
// Node), one line each; exits 1 when something mfr needs is broken.
import type { Command } from "commander";
import { type CheckStatus, checkEnvironment } from "../../torch/index.ts";

const MARK: Record<CheckStatus, string> = { ok: "ok  ", warn: "warn", fail: "FAIL" };

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check libtorch, CUDA/NCCL, threads, heap settings, the addon build, PyTorch and Node")
    .option("--json", "print the checks as JSON")
    .action((opts: { json?: boolean }) => {
      const checks = checkEnvironment();
      if (opts.json) console.log(JSON.stringify(checks, null, 2));
      else {
        const width = Math.max(...checks.map((c) => c.name.length));
        for (const c of checks) console.log(`${MARK[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`);
      }
      const failed = checks.filter((c) => c.status === "fail");
      if (failed.length) {
        console.error(`mfr doctor: ${failed.map((c) => c.name).join(", ")} broken (see above)`);
        process.exitCode = 1;
      }
    });
}
