// onnxruntime-node, as mfr uses it: a CPU session over an ONNX file or bytes, fed float32 NCHW
// batches. Its CPU provider ships inside the npm package, so nothing is downloaded.
import * as ort from "onnxruntime-node";

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
    const session =
      typeof model === "string"
        ? await ort.InferenceSession.create(model, opts)
        : await ort.InferenceSession.create(model, opts);
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
