// The run report: report.html in a run folder, from what the folder holds (src/report/run.ts
// reads it, page.ts draws it). The CLI writes it after `mfr train` and `mfr eval --report`, and
// `mfr report RUN_DIR` rebuilds it.
import fs from "node:fs";
import path from "node:path";
import * as T from "../torch/index.ts";
import { renderRunReport } from "./page.ts";
import { readRun } from "./run.ts";

export {
  readRun,
  isRunDir,
  type RunData,
  type StepRecord,
  type VerifyRecord,
  type EvalResult,
} from "./run.ts";
export { renderRunReport } from "./page.ts";

export const REPORT_FILE = "report.html";

/**
 * Writes runDir/report.html (atomically: a reader never sees half a page) and returns its path.
 * `config`, the resolved config, is shown when the folder's run.json does not hold one.
 */
export async function writeRunReport(runDir: string, o: { config?: unknown } = {}): Promise<string> {
  const html = await renderRunReport(readRun(runDir), o);
  const file = path.join(runDir, REPORT_FILE);
  T.writeAtomic(file, (fd) => fs.writeSync(fd, Buffer.from(html, "utf8")));
  return file;
}
