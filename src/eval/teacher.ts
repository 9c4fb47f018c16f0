// An ONNX model as a distillation teacher (src/train/distill/teacher.ts's Teacher, structurally):
// onnxruntime-node on the CPU, through the embedder `mfr embed` uses. Batches are copied to the
// host and the embeddings back to the batch's device, so on a GPU run this is a slow teacher:
// write a feature store with it instead.
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { INPUT_SIZE } from "../models/index.ts";
import { OnnxEmbedder } from "./embed.ts";

export interface OnnxTeacher {
  readonly file: string;
  readonly kind: "onnx";
  readonly embeddingSize: number;
  embed(x: Tensor): Promise<Tensor>;
  sha256(): string;
  close(): Promise<void>;
}

const PER_IMAGE = 3 * INPUT_SIZE * INPUT_SIZE;

export async function openOnnxTeacher(file: string, o: { threads?: number } = {}): Promise<OnnxTeacher> {
  let s: OnnxEmbedder;
  try {
    s = await OnnxEmbedder.open(file, o.threads !== undefined ? { threads: o.threads } : {});
  } catch (e) {
    throw new Error(`distill.teacher: ${(e as Error).message}`, { cause: e });
  }
  // The output width is known once the model has run: one blank face.
  const probeRows = s.fixedBatch ?? 1;
  const probe = await s.embed(new Float32Array(probeRows * PER_IMAGE), probeRows);
  const D = probe.length / probeRows;
  return {
    file,
    kind: "onnx",
    embeddingSize: D,
    async embed(x: Tensor): Promise<Tensor> {
      const n = x.size(0);
      const rows = s.fixedBatch ?? n;
      const host = T.scope(() => x.detach().to("cpu").float().contiguous().data() as Float32Array);
      const out = new Float32Array(n * D);
      for (let i = 0; i < n; i += rows) {
        const m = Math.min(rows, n - i);
        out.set(await s.embed(host.subarray(i * PER_IMAGE, (i + m) * PER_IMAGE), m), i * D);
      }
      return T.scope(() => T.toDevice(T.tensor(out, { shape: [n, D] }), x.device));
    },
    sha256: () => T.sha256File(file),
    close: () => s.close(),
  };
}
