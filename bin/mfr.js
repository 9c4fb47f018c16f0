#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader (preamble.js) so no build step is needed. glibc
// reads its heap settings only at process start (src/torch/heap.ts says which and why), so a
// process started without them runs the CLI in a child that has them, and exits as the child did.
import { spawn } from "node:child_process";
import "./preamble.js";
const { heapEnv, startedWithHeapEnv } = await import("../src/torch/heap.ts");
const { withParentPipe } = await import("../src/distributed/parent.ts");

if (startedWithHeapEnv()) {
  await import("../src/cli/main.ts");
} else {
  // The child stops when this process dies (withParentPipe), so a `kill -9` of the command the
  // user started does not leave the real work running.
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    ...withParentPipe(["inherit", "inherit", "inherit"], heapEnv()),
  });
  // A terminal's Ctrl-C reaches the child too (same process group): outlive it and let the child
  // decide; signals sent to this process alone are passed on.
  process.on("SIGINT", () => {});
  for (const sig of /** @type {const} */ (["SIGTERM", "SIGHUP"])) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
}
