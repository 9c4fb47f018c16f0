// Distillation as the trainer uses it (config key `distill`): the teacher's embeddings of each
// batch, either computed online by this rank's replica of the teacher or read from a feature
// store, and the loss term (with the student's projection when the embedding sizes differ).
import * as T from "../../torch/index.ts";
import { type Tensor } from "../../torch/index.ts";
import { type Batch, DEFAULT_MASK_TILES, type Dataset, type RecordMasks } from "../../data/index.ts";
import { type TrainConfig } from "../config.ts";
import { Precision } from "../precision.ts";
import { FeatureStore, datasetIdentity } from "./store.ts";
import { type Teacher, openTeacher, teacherWeightsFile } from "./teacher.ts";
import { DistillTerm } from "./term.ts";

export class Distillation {
  #store: FeatureStore | undefined;

  private constructor(
    readonly cfg: NonNullable<TrainConfig["distill"]>,
    private readonly run: TrainConfig,
    private readonly teacher: Teacher | undefined,
  ) {}

  /** The teacher's embedding size: the online teacher's, or the store's. */
  get teacherSize(): number {
    const d = this.teacher?.embeddingSize ?? this.#store?.embeddingSize;
    if (d === undefined) throw new Error("distillation: the feature store is not attached yet");
    return d;
  }

  /**
   * mode "features": opens the store and checks it against the run's dataset, augmentation and
   * teacher; returns the per-record masks the loader must draw (undefined: the store has none).
   */
  attachStore(dataset: Dataset): RecordMasks | undefined {
    if (this.cfg.mode !== "features") return undefined;
    const d = this.run.data;
    this.#store = FeatureStore.open(this.cfg.store!, {
      datasetIdentity: datasetIdentity(dataset),
      datasetSource: dataset.source,
      teacherSha256: T.sha256File(teacherWeightsFile(this.cfg.teacher)),
      teacherSource: this.cfg.teacher,
      imageSize: d.imageSize,
      jpegMode: d.jpegMode,
      maskTiles: DEFAULT_MASK_TILES,
      needsMasks: d.maskProb > 0,
      needsFlips: d.flipProb > 0,
    });
    return this.#store.manifest.augment.recordMasks ?? undefined;
  }

  /** mode "features": each batch with its stored teacher rows; online: the batches as they are. */
  async *withFeatures(batches: AsyncIterable<Batch>): AsyncGenerator<Batch> {
    const store = this.#store;
    for await (const b of batches) {
      if (!store) yield b;
      else if (!b.maskVariant) throw new Error("distillation: a batch without its mask variants");
      else yield { ...b, teacher: store.read(b.indices, b.flipped, b.maskVariant) };
    }
  }

  /** mode "online": the teacher's embeddings [B, Dt] of this rank's batch x. */
  embed(x: Tensor): Promise<Tensor> {
    if (!this.teacher) throw new Error("distillation: mode 'features' has no online teacher");
    return this.teacher.embed(x);
  }

  term(studentSize: number, device: string): DistillTerm {
    return new DistillTerm(this.cfg.lambda, studentSize, this.teacherSize, device);
  }

  async close(): Promise<void> {
    this.#store?.close();
    await this.teacher?.close();
  }

  /** The run's distillation (undefined without `distill`); an online teacher is loaded on `device`. */
  static async open(
    cfg: TrainConfig,
    device: string,
    onnx?: (file: string) => Promise<Teacher>,
  ): Promise<Distillation | undefined> {
    const d = cfg.distill;
    if (!d) return undefined;
    let teacher: Teacher | undefined;
    if (d.mode === "online") {
      // Under the run's autocast, one micro-batch at a time.
      const precision = new Precision(cfg.train.amp, T.deviceKind(device), cfg.train.headPrecision);
      teacher = await openTeacher(d.teacher, {
        device,
        autocast: (fn) => precision.backbone(fn),
        chunk: cfg.data.batchSize / cfg.train.microBatches,
        ...(onnx ? { onnx } : {}),
      });
    }
    return new Distillation(d, cfg, teacher);
  }
}
