// `mfr serve`: the verification page (verify.html) and what it loads, from a static server on
// node:http: onnxruntime-web's WASM build (from node_modules), the run's exported ONNX model and
// the thresholds of the run's evaluation. Everything runs in the browser; the server only reads
// files, so any static server holding the same files would do.
import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface ServeOptions {
  runDir: string;
  /** The .onnx to run; default: the newest .onnx in runDir or runDir/export. */
  model?: string;
  port?: number;
  host?: string;
}

export interface Server {
  url: string;
  model: string;
  /** Where the thresholds come from (an evaluation's result.json), if the run has one. */
  evaluation?: string;
  close(): Promise<void>;
}

/** What the page offers as decision thresholds: τ at each target FPR, by pair subset. */
export interface Thresholds {
  source: string;
  fprKeys: string[];
  subsets: Record<string, Record<string, number | null>>;
}

const PAGE = path.join(path.dirname(fileURLToPath(import.meta.url)), "verify.html");
// The package resolves to a file in its dist/ folder, where the browser builds are too.
const ORT_DIR = path.dirname(createRequire(import.meta.url).resolve("onnxruntime-web"));
// The WASM build's ES module and the runtime files it fetches beside itself; nothing else of the
// package is served.
const ORT_FILE = /^ort(-wasm-simd-threaded)?\.(wasm\.min\.mjs|mjs|wasm)$/;
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".mjs": "text/javascript",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
  ".json": "application/json",
};

function newestOnnx(runDir: string): string | undefined {
  const found = [runDir, path.join(runDir, "export")]
    .filter((d) => fs.existsSync(d))
    .flatMap((d) =>
      fs
        .readdirSync(d)
        .filter((f) => f.endsWith(".onnx"))
        .map((f) => path.join(d, f)),
    );
  return found.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}

/** The thresholds of the run's first evaluation folder (alphabetically), as mfr eval wrote them. */
export function readThresholds(runDir: string): Thresholds | undefined {
  const dirs = fs
    .readdirSync(runDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(runDir, e.name, "result.json")))
    .map((e) => e.name)
    .sort();
  if (!dirs.length) return undefined;
  const file = path.join(runDir, dirs[0]!, "result.json");
  let r: { subsets?: Record<string, { threshold?: Record<string, number | null> }> };
  try {
    r = JSON.parse(fs.readFileSync(file, "utf8")) as typeof r;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (!r.subsets) throw new Error(`${file}: no "subsets" (not written by mfr eval)`);
  const subsets = Object.fromEntries(Object.entries(r.subsets).map(([k, s]) => [k, s.threshold ?? {}]));
  return { source: file, fprKeys: Object.keys(Object.values(subsets)[0] ?? {}), subsets };
}

/** Starts serving runDir's page; port 0 takes a free port (the returned url says which). */
export async function serveRun(o: ServeOptions): Promise<Server> {
  if (!fs.existsSync(o.runDir)) throw new Error(`${o.runDir}: no such run folder`);
  const model = o.model ?? newestOnnx(o.runDir);
  if (!model)
    throw new Error(
      `${o.runDir}: no .onnx model here or in export/; export one with mfr export --model CHECKPOINT --out ${path.join(o.runDir, "model.onnx")}`,
    );
  if (!fs.existsSync(model)) throw new Error(`${model}: no such file`);
  const thresholds = readThresholds(o.runDir);
  const files = (url: string): string | undefined => {
    if (url === "/" || url === "/index.html") return PAGE;
    if (url === "/model.onnx") return model;
    const ort = /^\/ort\/([^/]+)$/.exec(url)?.[1];
    if (ort && ORT_FILE.test(ort)) return path.join(ORT_DIR, ort);
    return undefined;
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost").pathname;
    if (url === "/thresholds.json") {
      res.writeHead(200, { "content-type": TYPES[".json"]! });
      res.end(JSON.stringify(thresholds ?? null));
      return;
    }
    const file = files(url);
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end(`not found: ${url}\n`);
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
      "content-length": fs.statSync(file).size,
    });
    fs.createReadStream(file).pipe(res);
  });
  const host = o.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 8080, host, resolve);
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;
  return {
    url: `http://${host}:${port}/`,
    model,
    ...(thresholds ? { evaluation: thresholds.source } : {}),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
