// Embedding extraction: a model (an exported .onnx run by onnxruntime-node, or a checkpoint run by
// libtorch in eval mode) over every image of a dataset, in order, batch by batch. The result feeds
// the pair evaluation; embeddings are written as the model returns them (it normalises rows itself).
// src/export provides the ONNX session and the images it reads (the same ones its check runs on).
import { existsSync } from "node:fs";
import * as T from "../torch/index.ts";
import {
  type BackboneDescriptor,
  type Backbone,
  INPUT_SIZE,
  loadBackboneCheckpoint,
} from "../models/index.ts";
import type { Dataset } from "../data/index.ts";
import {
  IMAGE_FLOATS,
  OnnxSession,
  type SessionOptions,
  flipImages,
  openImageSource,
  readImages,
} from "../export/index.ts";
import { NpyStreamWriter } from "./npy-stream.ts";

/** Something that turns [n, 3, 112, 112] normalised faces into [n, D] embeddings. */
export interface Embedder {
  readonly kind: "onnx" | "torch";
  /** The batch size the model requires, when it fixes one (an ONNX export with --batch N). */
  readonly fixedBatch: number | undefined;
  embed(images: Float32Array, n: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** A checkpoint's backbone in libtorch, eval mode, gradients off. */
export class TorchEmbedder implements Embedder {
  readonly kind = "torch";
  readonly fixedBatch = undefined;
  constructor(readonly model: Backbone) {
    model.eval();
  }
  async embed(images: Float32Array, n: number): Promise<Float32Array> {
    return T.scope(() =>
      T.noGrad(() => {
        const x = T.tensor(images.subarray(0, n * IMAGE_FLOATS), { shape: [n, 3, INPUT_SIZE, INPUT_SIZE] });
        return this.model.forward(x).to("f32").contiguous().data() as Float32Array;
      }),
    );
  }
  async close(): Promise<void> {
    this.model.dispose();
  }
}

/** An ONNX model in onnxruntime-node; batches are padded up to a fixed batch size if it has one. */
export class OnnxEmbedder implements Embedder {
  readonly kind = "onnx";
  private constructor(
    readonly session: OnnxSession,
    readonly fixedBatch: number | undefined,
  ) {}
  static async open(file: string, o: SessionOptions = {}): Promise<OnnxEmbedder> {
    const s = await OnnxSession.open(file, o);
    const shape = s.inputShape;
    if (
      shape &&
      (shape.length !== 4 || shape[1] !== 3 || shape[2] !== INPUT_SIZE || shape[3] !== INPUT_SIZE)
    ) {
      await s.close();
      throw new Error(
        `${file}: input '${s.inputName}' is [${shape.join(", ")}], not [batch, 3, ${INPUT_SIZE}, ${INPUT_SIZE}]`,
      );
    }
    const b = shape?.[0];
    return new OnnxEmbedder(s, typeof b === "number" && b > 0 ? b : undefined);
  }
  async embed(images: Float32Array, n: number): Promise<Float32Array> {
    const rows = this.fixedBatch ?? n;
    if (n > rows) throw new Error(`a batch of ${n} images exceeds the model's fixed batch of ${rows}`);
    let x = images.subarray(0, n * IMAGE_FLOATS);
    if (rows > n) {
      x = new Float32Array(rows * IMAGE_FLOATS);
      x.set(images.subarray(0, n * IMAGE_FLOATS));
    }
    const { data, dims } = await this.session.run(x, [rows, 3, INPUT_SIZE, INPUT_SIZE]);
    if (dims.length !== 2 || dims[0] !== rows)
      throw new Error(`model output is [${dims.join(", ")}], expected [${rows}, D]`);
    return data.subarray(0, n * dims[1]!);
  }
  async close(): Promise<void> {
    await this.session.close();
  }
}

export interface OpenEmbedderOptions extends SessionOptions {
  /** Overrides what a checkpoint's metadata or keys say about its layout. */
  hint?: Partial<BackboneDescriptor>;
}

/** An .onnx file runs in onnxruntime-node; anything else is loaded as a backbone checkpoint. */
export async function openEmbedder(model: string, o: OpenEmbedderOptions = {}): Promise<Embedder> {
  if (!existsSync(model)) throw new Error(`${model}: no such model file`);
  if (/\.onnx$/i.test(model)) return OnnxEmbedder.open(model, o);
  return new TorchEmbedder(loadBackboneCheckpoint(model, o.hint).model);
}

export interface EmbedProgress {
  done: number;
  total: number;
}

export interface EmbedOptions {
  batchSize?: number;
  /** Add the embedding of the mirrored image (arcface_torch's flip test-time augmentation). */
  flip?: boolean;
  workers?: number;
  limit?: number;
  onProgress?: (p: EmbedProgress) => void;
}

export interface Embeddings {
  /** [count, dim] row-major. */
  embeddings: Float32Array;
  /** Identity of each row (-1 for images without identities). */
  labels: Int32Array;
  count: number;
  dim: number;
  labelled: boolean;
}

/** Receives embedded batches in dataset order. */
type Sink = (rows: Float32Array, labels: Int32Array, dim: number) => void;

/** Runs the embedder over the dataset (which it closes) and hands each batch to `sink`. */
async function embedInto(embedder: Embedder, dataset: Dataset, o: EmbedOptions, sink: Sink): Promise<number> {
  const total = Math.min(dataset.length, o.limit ?? Infinity);
  const batchSize = embedder.fixedBatch ?? o.batchSize ?? 64;
  let done = 0;
  o.onProgress?.({ done, total });
  for await (const b of readImages(dataset, { batchSize, workers: o.workers, limit: total })) {
    let e = await embedder.embed(b.images, b.n);
    if (o.flip) {
      const f = await embedder.embed(flipImages(b.images), b.n);
      e = e.map((v, i) => v + f[i]!);
    }
    sink(e, b.labels, e.length / b.n);
    done += b.n;
    o.onProgress?.({ done, total });
  }
  return done;
}

/** Embeds every image of `data` into memory. */
export async function embedDataset(
  embedder: Embedder,
  data: string,
  o: EmbedOptions = {},
): Promise<Embeddings> {
  const parts: Float32Array[] = [];
  const labels: Int32Array[] = [];
  let dim = 0;
  const { dataset, labelled } = openImageSource(data);
  const count = await embedInto(embedder, dataset, o, (rows, l, d) => {
    parts.push(rows);
    labels.push(l);
    dim = d;
  });
  const embeddings = new Float32Array(count * dim);
  let off = 0;
  for (const p of parts) {
    embeddings.set(p, off);
    off += p.length;
  }
  const allLabels = new Int32Array(count);
  off = 0;
  for (const l of labels) {
    allLabels.set(l, off);
    off += l.length;
  }
  return { embeddings, labels: allLabels, count, dim, labelled };
}

/**
 * Embeds every image of `data` straight into .npy files (embeddings float32 [N, D], labels int64
 * [N]), without holding the whole set in memory. Each file appears only once complete.
 */
export async function embedToFiles(
  embedder: Embedder,
  data: string,
  out: { embeddings: string; labels?: string },
  o: EmbedOptions = {},
): Promise<{ count: number; dim: number; labelled: boolean }> {
  const { dataset, labelled } = openImageSource(data);
  const total = Math.min(dataset.length, o.limit ?? Infinity);
  if (out.labels !== undefined && !labelled) {
    dataset.close();
    throw new Error(`${data}: images without identities have no labels to write (drop --labels)`);
  }
  let emb: NpyStreamWriter | undefined;
  const lab = out.labels === undefined ? undefined : new NpyStreamWriter(out.labels, "<i8", [total]);
  let dim = 0;
  try {
    const count = await embedInto(embedder, dataset, o, (rows, labels, d) => {
      dim = d;
      emb ??= new NpyStreamWriter(out.embeddings, "<f4", [total, d]);
      emb.write(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
      lab?.write(new Uint8Array(BigInt64Array.from(labels, (v) => BigInt(v)).buffer));
    });
    if (emb === undefined) throw new Error(`${data}: no images to embed`);
    emb.finish();
    lab?.finish();
    return { count, dim, labelled };
  } catch (e) {
    emb?.abort();
    lab?.abort();
    throw e;
  }
}
