// What a config will hold in memory per rank, from the config alone (no data, no tensors): the
// backbone's weights, gradients and optimizer state (sharded by ZeRO), this rank's head shard
// (weights, optimizer state; the reference head adds its gradient, a normalised copy and the logits
// of a micro-batch, the fused head its blocks), and the
// backbone's activations kept for backward, with and without checkpointing.
//
// Activations come from the iResNet's block shapes at 112×112 (iresnetBlocks) and what each layer
// saves for its backward pass (per image, in elements):
//   stem: conv1's output (kept by bn1) and bn1's (kept by PReLU): 2·c0·112²
//   block (cin×H² in, planes×H'² out): its input (kept by bn1 and the shortcut conv), bn1's output
//     (kept by conv1), conv1's, bn2's and PReLU's outputs (kept by bn2, PReLU, conv2), conv2's output
//     (kept by bn3) and the shortcut conv's (kept by its BN):
//     2·cin·H² + 3·planes·H² + planes·H'² (+ planes·H'² with a projected shortcut)
//   tail: the last block's output and bn2's (kept by bn2 and the FC), the FC's output (kept by the
//     embedding BN): 2·c3·7² + D
// Checkpointed, a segment keeps only its input during forward; backward replays one segment at a
// time, so the peak is the stem, tail and segment inputs plus the largest segment's activations.
// Under AMP the saved tensors are half precision (the input batch stays fp32). The figures leave
// out transient buffers (a layer's output gradient while it runs) and the allocator's slack.
import { type BlockShape, iresnetBlocks, resolvePreset } from "../models/index.ts";
import { backboneCost } from "../models/index.ts";
import { segmentBlocks } from "../models/common.ts";
import { type TrainConfig, headIsFused } from "./config.ts";
import { blockClasses, fusedHeadBytes } from "../head/index.ts";

export interface PlanRow {
  /** What the bytes are. */
  item: string;
  bytes: number;
  /** How the figure was reached (the closed form with the config's numbers). */
  how: string;
}

export interface MemoryPlan {
  worldSize: number;
  /** Classes of the largest head shard (rank 0's); undefined when the config takes them from the data. */
  shardClasses: number | undefined;
  backbone: PlanRow[];
  head: PlanRow[];
  /** Activations kept for backward: as configured, and the alternative (plain or checkpointed). */
  activations: { checkpointed: PlanRow; plain: PlanRow } | undefined;
  /** Backbone + head + activations as configured. */
  total: number;
}

const F32 = 4;

/** Optimizer state per parameter element, in fp32 values: momentum, or AdamW's two moments. */
function stateValues(optim: TrainConfig["optim"]["name"]): number {
  return optim === "adamw" ? 2 : 1;
}

/** Elements each image keeps for backward in the stem, each block, and the tail (see above). */
export function activationElements(
  blocks: readonly BlockShape[],
  embeddingSize: number,
  inputSize = 112,
): { stem: number; blocks: number[]; tail: number } {
  const last = blocks.at(-1)!;
  return {
    stem: 2 * blocks[0]!.cin * inputSize ** 2,
    blocks: blocks.map(
      (b) =>
        2 * b.cin * b.inSize ** 2 +
        3 * b.planes * b.inSize ** 2 +
        b.planes * b.outSize ** 2 * (b.downsample ? 2 : 1),
    ),
    tail: 2 * last.planes * last.outSize ** 2 + embeddingSize,
  };
}

/** The memory plan of a validated config at `worldSize` ranks. */
export function memoryPlan(cfg: TrainConfig, worldSize: number): MemoryPlan {
  const K = worldSize;
  const zero = cfg.train.zero;
  const { params: P } = backboneCost(cfg.model.backbone, {
    width: cfg.model.width,
    numFeatures: cfg.model.embeddingSize,
  });
  const states = stateValues(cfg.optim.name);
  const bucket = cfg.dist.bucketCapMB * 2 ** 20;
  const backbone: PlanRow[] = [
    { item: "weights (fp32, every rank)", bytes: F32 * P, how: `${P} parameters × 4 B` },
    zero === 2
      ? {
          item: "gradients (ZeRO-2: own 1/K, plus one bucket in flight)",
          bytes: (F32 * P) / K + bucket,
          how: `4 B × ${P} / ${K} + ${cfg.dist.bucketCapMB} MiB`,
        }
      : { item: "gradients (fp32)", bytes: F32 * P, how: `4 B × ${P}` },
    {
      item: `${cfg.optim.name} state${zero > 0 ? ` (ZeRO-${zero}: 1/K)` : ""}`,
      bytes: (F32 * states * P) / (zero > 0 ? K : 1),
      how: `${states} × 4 B × ${P}${zero > 0 ? ` / ${K}` : ""}`,
    },
  ];

  const C = cfg.head.numClasses;
  const D = cfg.model.embeddingSize;
  const shard = C > 0 ? Math.floor(C / K) + (C % K > 0 ? 1 : 0) : undefined;
  const head: PlanRow[] = [];
  if (shard !== undefined) {
    const w = F32 * shard * D;
    const how = `${shard} classes × ${D} × 4 B`;
    head.push(
      { item: "shard weights", bytes: w, how },
      { item: `shard ${cfg.optim.name} state`, bytes: states * w, how: `${states} × ${how}` },
    );
    const sampled = Math.ceil(shard * cfg.head.sampleRate);
    const rows = (cfg.data.batchSize / cfg.train.microBatches) * K;
    if (headIsFused(cfg)) {
      const chunk = Math.min(cfg.head.chunk ?? blockClasses(rows), shard);
      const { working } = fusedHeadBytes({
        numClasses: C,
        embeddingSize: D,
        worldSize: K,
        globalBatch: rows,
        chunk,
      });
      head.push({
        item: "fused head's blocks",
        bytes: working,
        how: `global batch ${rows} × ${chunk}-class blocks and [${rows}, ${D}] (fusedHeadBytes)`,
      });
    } else {
      const bytes = cfg.train.headPrecision === "amp" && cfg.train.amp !== "none" ? 2 : F32;
      head.push(
        { item: "shard gradient", bytes: w, how },
        { item: "normalised centres", bytes: w, how },
        {
          item: "logits of a micro-batch",
          bytes: rows * sampled * bytes,
          how: `global batch ${rows} × ${sampled} classes${cfg.head.sampleRate < 1 ? " (sampled)" : ""} × ${bytes} B`,
        },
      );
    }
  }

  const activations = activationPlan(cfg);
  const sum = (rows: PlanRow[]): number => rows.reduce((s, r) => s + r.bytes, 0);
  const configured = activations
    ? cfg.train.checkpoint === "none"
      ? activations.plain
      : activations.checkpointed
    : undefined;
  return {
    worldSize: K,
    shardClasses: shard,
    backbone,
    head,
    activations,
    total: sum(backbone) + sum(head) + (configured?.bytes ?? 0),
  };
}

function activationPlan(cfg: TrainConfig): MemoryPlan["activations"] {
  const preset = resolvePreset(cfg.model.backbone);
  if (preset.family !== "iresnet") return undefined;
  const shapes = iresnetBlocks({ blocks: preset.blocks, width: cfg.model.width });
  const e = activationElements(shapes, cfg.model.embeddingSize, cfg.data.imageSize);
  const perRank = cfg.data.batchSize / cfg.train.microBatches;
  const half = cfg.train.amp !== "none";
  const elt = half ? 2 : F32;
  const input = 3 * cfg.data.imageSize ** 2 * F32;
  const bytes = (elements: number): number => perRank * (input + elements * elt);
  const sumOf = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0);
  const plainElements = e.stem + sumOf(e.blocks) + e.tail;
  // Checkpointing every block when the config does not say how (the granularity to use: docs).
  const policy = cfg.train.checkpoint === "none" ? { every: 1 } : cfg.train.checkpoint;
  const byStage = shapes.reduce<number[][]>((acc, b, i) => {
    (acc[b.stage] ??= []).push(i);
    return acc;
  }, []);
  const segments = segmentBlocks(byStage, policy);
  const inputs = sumOf(segments.map((seg) => shapes[seg[0]!]!.cin * shapes[seg[0]!]!.inSize ** 2));
  const largest = Math.max(...segments.map((seg) => sumOf(seg.map((i) => e.blocks[i]!))));
  const ckptElements = e.stem + e.tail + inputs + largest;
  const mb = `${perRank} images per micro-batch`;
  const dtype = half ? "2 B (AMP)" : "4 B";
  const name = policy === "stage" ? "per stage" : `every ${policy.every} block(s)`;
  return {
    plain: {
      item: "activations, no checkpointing",
      bytes: bytes(plainElements),
      how: `${mb} × (${plainElements} elements × ${dtype} + fp32 input)`,
    },
    checkpointed: {
      item: `activations, checkpointed ${name}`,
      bytes: bytes(ckptElements),
      how: `${mb} × (${ckptElements} elements × ${dtype} + fp32 input): ${segments.length} segment inputs + the largest segment replayed`,
    },
  };
}
