// The distillation teacher: a frozen backbone turning the student's input batch into embeddings.
// It can be
//   - an mfr run folder (its newest complete checkpoint) or checkpoint folder / .safetensors,
//   - an arcface_torch .pth backbone (layout read off its keys, src/models/backbone-file.ts),
//   - an ONNX model, run by onnxruntime-node on the CPU (inputs copied to the host and back: fine
//     for writing a feature store, slow for online distillation on a GPU). onnxruntime lives in
//     src/eval and src/export, above this layer, so the caller (the CLI) hands in src/eval's
//     openOnnxTeacher.
// A libtorch teacher runs on the run's device, in eval mode, without gradients, under the run's
// autocast, one micro-batch at a time (its activations never pile up beside the student's).
import fs from "node:fs";
import path from "node:path";
import * as T from "../../torch/index.ts";
import { type Tensor } from "../../torch/index.ts";
import { type Backbone, loadBackboneCheckpoint, newestIfRunDir } from "../../models/index.ts";

export interface Teacher {
  /** The file the weights came from (what a feature store records). */
  readonly file: string;
  readonly kind: "torch" | "onnx";
  readonly embeddingSize: number;
  /** Embeddings [n, D] (f32, on x's device, no autograd history) of normalised faces x [n, 3, H, W]. */
  embed(x: Tensor): Promise<Tensor>;
  /** sha256 of the weights file (a feature store is tied to it). */
  sha256(): string;
  close(): Promise<void>;
}

export interface TeacherOptions {
  /** Where a libtorch teacher runs (default cpu). */
  device?: string;
  /** The run's autocast around the teacher's forward (default: none). */
  autocast?: <R>(fn: () => R) => R;
  /** Rows per forward (default: the whole batch). */
  chunk?: number;
  /** Opens an .onnx teacher (src/eval's openOnnxTeacher); without it an .onnx is refused. */
  onnx?: (file: string) => Promise<Teacher>;
}

/** The weights file a teacher path names: a run folder's newest checkpoint, else the path itself. */
export function resolveTeacherPath(p: string): string {
  if (!fs.existsSync(p)) throw new Error(`distill.teacher: ${p} does not exist`);
  try {
    return newestIfRunDir(p);
  } catch (e) {
    throw new Error(`distill.teacher: ${(e as Error).message}`, { cause: e });
  }
}

/** The single file holding a teacher's weights (what a feature store's checksum is of). */
export function teacherWeightsFile(p: string): string {
  const where = resolveTeacherPath(p);
  return fs.statSync(where).isDirectory() ? path.join(where, "backbone.safetensors") : where;
}

export async function openTeacher(p: string, o: TeacherOptions = {}): Promise<Teacher> {
  const where = resolveTeacherPath(p);
  if (/\.onnx$/i.test(where)) {
    if (!o.onnx) throw new Error(`distill.teacher: ${where}: this caller cannot run ONNX teachers`);
    return o.onnx(where);
  }
  let loaded;
  try {
    loaded = loadBackboneCheckpoint(where);
  } catch (e) {
    throw new Error(`distill.teacher: ${(e as Error).message}`, { cause: e });
  }
  return new TorchTeacher(teacherWeightsFile(where), loaded.model, loaded.descriptor.numFeatures, o);
}

class TorchTeacher implements Teacher {
  readonly kind = "torch";
  constructor(
    readonly file: string,
    private readonly model: Backbone,
    readonly embeddingSize: number,
    private readonly o: TeacherOptions,
  ) {
    for (const q of model.parameters()) q.requiresGrad_(false);
    model.to(o.device ?? "cpu").eval();
  }
  async embed(x: Tensor): Promise<Tensor> {
    const n = x.size(0);
    const chunk = Math.min(n, this.o.chunk ?? n);
    const run = this.o.autocast ?? (<R>(fn: () => R): R => fn());
    return T.scope(() =>
      T.noGrad(() => {
        const parts: Tensor[] = [];
        for (let i = 0; i < n; i += chunk) {
          const xi = chunk === n ? x : x.narrow(0, i, Math.min(chunk, n - i));
          parts.push(run(() => this.model.forward(xi)).float());
        }
        return parts.length === 1 ? parts[0]! : T.cat(parts);
      }),
    );
  }
  sha256(): string {
    return T.sha256File(this.file);
  }
  async close(): Promise<void> {
    this.model.dispose();
  }
}
