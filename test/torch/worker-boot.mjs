// Worker threads do not inherit the main thread's --import hooks on Node 20: load the TypeScript
// module named in workerData through tsx's own import.
import { workerData } from "node:worker_threads";
import { tsImport } from "tsx/esm/api";

await tsImport(workerData.module, import.meta.url);
