// The trainer, top to bottom: data loader → TrainStep (backbone forward, model-parallel head, loss,
// backward, the backbone's gradient sync and optimizer (plain data parallel or ZeRO), the head
// shard's optimizer, with the peak-memory switches of `train`) → LR schedule per iteration;
// metrics.jsonl, periodic verification, checkpoints (keep the last N), resume.
// It never prints: progress goes out through `onEvent`.
import fs from "node:fs";
import path from "node:path";
import * as T from "../torch/index.ts";
import { ProcessGroup, placementFromEnv } from "../distributed/index.ts";
import { FusedPartialFC, PartialFC } from "../head/index.ts";
import { MARGIN_PRESETS } from "../losses/index.ts";
import { type Backbone, buildBackbone } from "../models/index.ts";
import { LRScheduler } from "../optim/index.ts";
import { type Batch, DataLoader, openDataset } from "../data/index.ts";
import { prefetchToDevice } from "../data/tensors.ts";
import { type TrainConfig, headIsFused } from "./config.ts";
import {
  CorruptCheckpointError,
  type TrainState,
  loadCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
} from "./checkpoint.ts";
import { TrainStep } from "./step.ts";
import { baseLr, headOptimizer, optimizerFactory, scheduleOptions } from "./optim-config.ts";
import { checkBatchLabels } from "./labels.ts";
import { stopAgreed } from "./interrupt.ts";
import { type VerifyResult, Verifier } from "./verify.ts";
import { Distillation } from "./distill/setup.ts";
import { type Teacher } from "./distill/teacher.ts";
import { runInfo, writeRunInfo } from "./run-info.ts";
import {
  checkpointToResume,
  intactCheckpointHint,
  removeStaleTempFiles,
  truncateMetrics,
} from "./run-dir.ts";

export interface StepMetrics {
  step: number;
  loss: number;
  lr: number;
  /** With distillation: loss = ce + λ·distill, each the mean over the global batch. */
  ce?: number;
  distill?: number;
  imagesPerSec: number;
  rssMB: number;
  epoch: number;
  /** With loss scaling: the scale the step ran with, and whether it was skipped (overflow). */
  lossScale?: number;
  skipped?: boolean;
}

export type TrainEvent =
  | {
      kind: "start";
      startStep: number;
      steps: number;
      worldSize: number;
      numClasses: number;
      params: number;
      /** The base learning rate (after linear scaling), before warm-up and decay. */
      lr: number;
    }
  | { kind: "step"; metrics: StepMetrics }
  | ({ kind: "verify"; step: number } & VerifyResult)
  | { kind: "checkpoint"; step: number; dir: string }
  | { kind: "warning"; message: string };

export interface TrainOptions {
  /** Default: joined from the environment (single process when WORLD_SIZE is unset). */
  group?: ProcessGroup;
  /**
   * Continue from the newest complete checkpoint in runDir (true: there must be one), or from
   * the checkpoint folder named.
   */
  resume?: boolean | string;
  onEvent?: (e: TrainEvent) => void;
  /** Stop after this step (tests); the schedule still spans config.steps. */
  stopAfter?: number;
  /**
   * Stop at the next step boundary once aborted (all ranks after the same step), saving a
   * checkpoint there when checkpointing is on; the run can then be resumed.
   */
  signal?: AbortSignal;
  /** Opens an .onnx distillation teacher (src/eval's openOnnxTeacher; the CLI passes it). */
  onnxTeacher?: (file: string) => Promise<Teacher>;
}

export interface TrainResult {
  losses: { step: number; loss: number }[];
  startStep: number;
  backbone: Backbone;
  /** The step the run stopped after when `signal` aborted it; undefined when it ran to its end. */
  interruptedAt?: number;
}

export async function train(cfg: TrainConfig, o: TrainOptions = {}): Promise<TrainResult> {
  const emit = o.onEvent ?? ((): void => undefined);
  // The device first: NCCL binds to the rank's current GPU when the group is made.
  const device = T.resolveDevice(cfg.device, o.group ? 0 : placementFromEnv().localRank);
  const group = o.group ?? ProcessGroup.init(undefined, { timeoutMs: cfg.dist.timeoutS * 1000, device });
  try {
    fs.mkdirSync(cfg.runDir, { recursive: true });
    if (group.rank === 0)
      for (const f of removeStaleTempFiles(cfg.runDir))
        emit({ kind: "warning", message: `removed ${f}, left by an interrupted write` });
    const distill = await Distillation.open(cfg, device, o.onnxTeacher);
    try {
      const { loader, numClasses, check } = await openLoader(cfg, group, distill);
      loader.on("warning", (w) => emit({ kind: "warning", message: `${w.where}: ${w.reason}` }));
      try {
        return await trainWith(cfg, o, group, loader, numClasses, check, device, distill);
      } finally {
        // The decode workers keep the process alive until closed, error or not.
        await loader.close();
      }
    } finally {
      await distill?.close();
    }
  } catch (e) {
    // A gradient all-reduce fails inside backward, out of the group's sight: name the silent ranks.
    throw group.explainFailure(e);
  } finally {
    if (!o.group) group.destroy();
  }
}

/** Data: each rank reads its own slice of every epoch (src/data's sharded sampler). */
async function openLoader(
  cfg: TrainConfig,
  group: ProcessGroup,
  distill: Distillation | undefined,
): Promise<{ loader: DataLoader; numClasses: number; check: (b: Batch) => void }> {
  const dataset = openDataset(cfg.data.path);
  try {
    // A feature store fixes the masks to the variants it holds features of (and checks the data).
    const recordMasks = distill?.attachStore(dataset);
    const numClasses = cfg.head.numClasses || dataset.numClasses;
    if (!numClasses)
      throw new Error(`head.numClasses: ${cfg.data.path} does not declare its identities; set it`);
    // The head allocates a class centre per identity: a count only metadata vouches for (a
    // property file, a list's largest label) must be backed by at least as many images.
    if (!cfg.head.numClasses && dataset.numClassesFrom && numClasses > dataset.length)
      throw new Error(
        `${dataset.numClassesFrom}: declares ${numClasses} identities but ${cfg.data.path} holds only ` +
          `${dataset.length} images; set head.numClasses to train that many classes anyway`,
      );
    const loader = await DataLoader.open(dataset, {
      batchSize: cfg.data.batchSize,
      worldSize: group.worldSize,
      rank: group.rank,
      seed: cfg.seed,
      workers: cfg.data.workers,
      imageSize: cfg.data.imageSize,
      maskProb: cfg.data.maskProb,
      flipProb: cfg.data.flipProb,
      jpegMode: cfg.data.jpegMode,
      maxBadFraction: cfg.data.maxBadFraction,
      ...(recordMasks ? { recordMasks } : {}),
      // Workers decode, mask and flip straight into u8 NHWC rows (their fastest path, a quarter of
      // the bytes across threads); layout and normalisation happen in libtorch (batchToTensors).
      dtype: "u8",
      layout: "nhwc",
    });
    const whence = cfg.head.numClasses
      ? `head.numClasses = ${numClasses}`
      : `head.numClasses is 0: ${cfg.data.path} declares ${numClasses} identities`;
    const check = (b: Batch): void => checkBatchLabels(b, numClasses, whence, (i) => dataset.describe(i));
    return { loader, numClasses, check };
  } catch (e) {
    dataset.close();
    throw e;
  }
}

async function trainWith(
  cfg: TrainConfig,
  o: TrainOptions,
  group: ProcessGroup,
  loader: DataLoader,
  numClasses: number,
  checkLabels: (b: Batch) => void,
  device: string,
  distill: Distillation | undefined,
): Promise<TrainResult> {
  const emit = o.onEvent ?? ((): void => undefined);
  const { rank, worldSize } = group;

  // Model: the same initial backbone everywhere (seeded, then broadcast from rank 0 anyway).
  T.manualSeed(cfg.seed);
  const backbone = buildBackbone(cfg.model.backbone, {
    width: cfg.model.width,
    numFeatures: cfg.model.embeddingSize,
    checkpoint: cfg.train.checkpoint === "none" ? undefined : cfg.train.checkpoint,
  });
  backbone.to(device).train();
  // The student's projection onto the teacher's embedding size (if they differ) trains with it.
  const term = distill?.term(cfg.model.embeddingSize, device);
  const margin = typeof cfg.head.margin === "string" ? MARGIN_PRESETS[cfg.head.margin] : cfg.head.margin;
  const headOptions = {
    numClasses,
    embeddingSize: cfg.model.embeddingSize,
    sampleRate: cfg.head.sampleRate,
    margin,
    seed: cfg.head.seed,
    device,
  };
  const head = headIsFused(cfg)
    ? new FusedPartialFC(group, { ...headOptions, chunk: cfg.head.chunk })
    : new PartialFC(group, headOptions);
  // One optimizer for the replicated backbone (or, with ZeRO, for this rank's pieces of it) and
  // one for this rank's head shard (its state is sharded with it). Same schedule, per iteration.
  const lr = baseLr(cfg, worldSize);
  const makeOptimizer = optimizerFactory(cfg.optim, lr);
  const headOpt = headOptimizer(makeOptimizer, group, head.weight);
  const ls = cfg.train.lossScale;
  const stepper = new TrainStep(
    group,
    backbone,
    [{ params: [...backbone.parameters().filter((p) => p.requiresGrad), ...(term?.parameters() ?? [])] }],
    head,
    headOpt,
    makeOptimizer,
    {
      microBatches: cfg.train.microBatches,
      device,
      amp: cfg.train.amp,
      headPrecision: cfg.train.headPrecision,
      lossScale: ls.enabled === "auto" ? undefined : ls.enabled === "on" ? ls : false,
      zero: cfg.train.zero,
      clipNorm: cfg.optim.clipNorm,
      compress: cfg.dist.compress,
      bucketCapMB: cfg.dist.bucketCapMB,
      ...(term ? { distill: term } : {}),
    },
  );
  stepper.broadcastFromRoot(backbone.namedBuffers().map(([, b]) => b));
  // Per-rank randomness (Partial FC negatives, dropout) from here on.
  T.manualSeed(cfg.seed * 7919 + 1 + rank);
  const schedule = scheduleOptions(cfg);
  const schedules = [new LRScheduler(stepper.sync.optimizer, schedule), new LRScheduler(headOpt, schedule)];
  const state = (): TrainState => ({
    backbone,
    sync: stepper.sync,
    scaler: stepper.scaler,
    head,
    headOpt,
    ...(term?.projection ? { projection: term.projection } : {}),
  });

  let startStep = 0;
  const metricsFile = path.join(cfg.runDir, rank === 0 ? "metrics.jsonl" : `metrics-rank${rank}.jsonl`);
  let resumedFrom: string | undefined;
  if (o.resume) {
    const dir = checkpointToResume(cfg.runDir, o.resume);
    resumedFrom = dir;
    let loaded: ReturnType<typeof loadCheckpoint>;
    try {
      loaded = loadCheckpoint(group, dir, state());
    } catch (e) {
      if (!(e instanceof CorruptCheckpointError) || o.resume !== true) throw e;
      throw new Error(`${e.message}\n${intactCheckpointHint(cfg.runDir, dir)}`, { cause: e });
    }
    if (loaded.step > cfg.steps)
      throw new Error(`${dir}: step ${loaded.step} is past the schedule's end (steps = ${cfg.steps})`);
    startStep = loaded.step;
    truncateMetrics(metricsFile, startStep);
    for (const s of schedules) s.loadStateDict({ ...s.stateDict(), iteration: startStep });
    // A different world size has no per-rank RNG to restore: reseed from the step.
    if (!loaded.rank) T.manualSeed(cfg.seed * 7919 + 1 + rank + startStep * 104729);
  }
  if (rank === 0) writeRunInfo(cfg.runDir, runInfo(cfg, { worldSize, device, resumedFrom }));
  emit({
    kind: "start",
    startStep,
    steps: cfg.steps,
    worldSize,
    numClasses,
    params: backbone.numParameters(),
    lr,
  });

  // Sets are read before the first step, so a bad path fails now and not hours in.
  const verifier = cfg.verify
    ? await Verifier.open(cfg.verify, { group, device, imageSize: cfg.data.imageSize })
    : undefined;
  const verifyNow = async (at: number): Promise<void> => {
    if (!verifier) return;
    // Rank 0's BatchNorm statistics everywhere (each rank's own drift apart; rank 0's are the
    // checkpointed ones), as DDP's broadcast_buffers does; training uses batch statistics.
    await group.broadcast(backbone.namedBuffers().map(([, b]) => b)).waitAsync();
    backbone.eval();
    try {
      for (const r of await verifier.run(backbone)) {
        if (rank === 0)
          fs.appendFileSync(metricsFile, JSON.stringify({ type: "verify", step: at, ...r }) + "\n");
        emit({ kind: "verify", step: at, ...r });
      }
    } finally {
      backbone.train();
    }
  };
  // A baseline figure before the first step of a fresh run.
  if (startStep === 0) await verifyNow(0);
  const losses: { step: number; loss: number }[] = [];
  const end = Math.min(cfg.steps, o.stopAfter ?? cfg.steps);
  let step = startStep;
  let interruptedAt: number | undefined;
  try {
    let { epoch, step: inEpoch } = loader.sampler.position(step);
    while (step < end && interruptedAt === undefined) {
      const batches = distill
        ? distill.withFeatures(loader.epoch(epoch, inEpoch))
        : loader.epoch(epoch, inEpoch);
      for await (const { x, y, teacher } of prefetchToDevice(batches, device, checkLabels)) {
        if (step >= end) break;
        const t0 = performance.now();
        const lr = schedules[0]!.lr;
        // Online: the teacher's replica on this rank, on exactly the images the student sees.
        const t = distill && (teacher ?? (await distill.embed(x)));
        const { loss, parts, skipped, lossScale } = (() => {
          try {
            return stepper.run(x, y, t);
          } finally {
            if (t !== teacher) t?.dispose();
          }
        })();
        for (const s of schedules) s.step();
        step++;
        const seconds = (performance.now() - t0) / 1000;
        const metrics: StepMetrics = {
          step,
          loss,
          lr,
          ...(parts.distill !== undefined ? { ce: parts.ce, distill: parts.distill } : {}),
          imagesPerSec: (cfg.data.batchSize * worldSize) / seconds,
          rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
          epoch,
          ...(lossScale !== undefined ? { lossScale, skipped } : {}),
        };
        losses.push({ step, loss });
        if (skipped) {
          const now = stepper.scaler!.scale;
          emit({
            kind: "warning",
            message: `step ${step}: non-finite gradients, update skipped; loss scale ${lossScale} -> ${now}`,
          });
        }
        if (step % cfg.logEvery === 0 || step === end)
          fs.appendFileSync(metricsFile, JSON.stringify(metrics) + "\n");
        emit({ kind: "step", metrics });
        const stop = step < end && stopAgreed(group, o.signal, device);
        if (stop) interruptedAt = step;
        if (cfg.checkpointEvery > 0 && (step % cfg.checkpointEvery === 0 || step === end || stop)) {
          const dir = saveCheckpoint(group, cfg.runDir, step, state());
          if (rank === 0) pruneCheckpoints(cfg.runDir, cfg.keepCheckpoints);
          emit({ kind: "checkpoint", step, dir });
        }
        if (stop) break;
        if (cfg.verify && (step % cfg.verify.every === 0 || step === end)) await verifyNow(step);
      }
      epoch++;
      inEpoch = 0;
    }
  } finally {
    stepper.sync.optimizer.dispose();
    headOpt.dispose();
    stepper.dispose();
    head.dispose();
  }
  return { losses, startStep, backbone, ...(interruptedAt !== undefined ? { interruptedAt } : {}) };
}
