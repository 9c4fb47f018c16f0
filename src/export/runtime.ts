// onnxruntime-node, as mfr uses it: a CPU session over an ONNX file or bytes, fed float32 NCHW
// batches. Its CPU provider ships inside the npm package, so nothing is downloaded.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { DataLocation, decodeModel } from "./onnx-proto.ts";

export type GraphOptimization = "disabled" | "basic" | "extended" | "all";

export interface SessionOptions {
  /** Intra-op threads (onnxruntime's default: one per core). */
  threads?: number;
  /** onnxruntime's graph rewrites ("all" by default; "basic" already fuses BatchNorm into Conv). */
  optimization?: GraphOptimization;
}

/** One input, one output session (mfr's exports, and the challenge's submissions). */
export class OnnxSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputName: string,
    readonly outputName: string,
  ) {}

  static async open(model: string | Uint8Array, o: SessionOptions = {}): Promise<OnnxSession> {
    const opts: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: o.optimization ?? "all",
      executionProviders: ["cpu"],
      ...(o.threads !== undefined ? { intraOpNumThreads: o.threads, interOpNumThreads: 1 } : {}),
    };
    let session: ort.InferenceSession;
    try {
      session =
        typeof model === "string"
          ? await ort.InferenceSession.create(model, opts)
          : await ort.InferenceSession.create(model, opts);
    } catch (e) {
      if (typeof model === "string") missingExternalData(model, e);
      throw e;
    }
    const [input] = session.inputNames;
    const [output] = session.outputNames;
    if (input === undefined || output === undefined || session.inputNames.length !== 1)
      throw new Error(
        `${typeof model === "string" ? model : "model"}: expected one input and at least one output, ` +
          `found inputs [${session.inputNames.join(", ")}], outputs [${session.outputNames.join(", ")}]`,
      );
    return new OnnxSession(session, input, output);
  }

  /** Input shape as declared: a number per fixed dimension, a string for symbolic ones. */
  get inputShape(): (number | string)[] | undefined {
    const meta = this.session.inputMetadata[0];
    return meta && meta.isTensor ? [...meta.shape] : undefined;
  }

  /** Runs a batch of `n` images [n, 3, h, w]; returns the first output, [n, D]. */
  async run(images: Float32Array, dims: readonly number[]): Promise<{ data: Float32Array; dims: number[] }> {
    const x = new ort.Tensor("float32", images, [...dims]);
    const out = await this.session.run({ [this.inputName]: x });
    const y = out[this.outputName]!;
    x.dispose();
    if (y.type !== "float32") throw new Error(`model output '${this.outputName}' is ${y.type}, not float32`);
    const data = y.data as Float32Array;
    const shape = [...y.dims];
    y.dispose();
    return { data, dims: shape };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Throws a clear error when `file` keeps weights in external data files that are not beside it
 * (onnxruntime's own message names neither); returns when that is not why it failed to load.
 */
function missingExternalData(file: string, cause: unknown): void {
  let locations: string[];
  try {
    const m = decodeModel(readFileSync(file), file);
    locations = m.graph.initializer
      .filter((t) => t.dataLocation === DataLocation.EXTERNAL)
      .map((t) => t.externalData?.find((e) => e.key === "location")?.value ?? "");
  } catch {
    return;
  }
  const missing = [...new Set(locations)].filter((l) => !existsSync(path.join(path.dirname(file), l)));
  if (missing.length > 0)
    throw new Error(
      `${file}: its weights are in ${missing.map((l) => path.join(path.dirname(file), l)).join(", ")} ` +
        "(ONNX external data), which is missing: keep that file beside the model",
      { cause },
    );
}
