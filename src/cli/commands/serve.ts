// `mfr serve RUN_DIR`: the browser verification page for the run's exported model, on a local
// static server, until Ctrl-C.
import type { Command } from "commander";
import { serveRun } from "../../web/server.ts";
import { integer } from "../flags.ts";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description(
      "serve a page that verifies two faces in the browser with the run's ONNX model (onnxruntime-web) and its evaluation's thresholds",
    )
    .argument(
      "<run-dir>",
      "run folder holding an exported .onnx (or export/*.onnx) and, for thresholds, eval/result.json",
    )
    .option("--model <file>", "the .onnx to serve (default: the newest in the run folder or its export/)")
    .option("--port <n>", "port (0: any free one)", integer("--port", 0, 65535), 8080)
    .option("--host <addr>", "address to listen on", "127.0.0.1")
    .action(async (runDir: string, o: { model?: string; port: number; host: string }) => {
      const s = await serveRun({ runDir, model: o.model, port: o.port, host: o.host });
      console.log(`serving ${s.model}${s.evaluation ? ` with thresholds from ${s.evaluation}` : ""}`);
      console.log(`open ${s.url} (Ctrl-C stops)`);
    });
}
