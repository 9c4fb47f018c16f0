// What a backbone checkpoint is, on disk, for everything after training (export, embed, eval):
//
//   - mfr's own: a safetensors file holding the backbone's state dict (arcface_torch key names)
//     with string metadata naming how to rebuild it: "mfr.backbone" (a preset name such as "r50"
//     or four block counts "[3,4,14,3]"), "mfr.width" (the channel multiplier, "1" if absent) and
//     "mfr.num_features" (the embedding size). saveBackboneCheckpoint writes exactly that.
//   - the trainer's: a checkpoint step folder (or its backbone.safetensors) whose backbone
//     tensors are stored under "model.<key>" beside optimizer state; the "model." keys are taken.
//     A run folder (runDir) stands for its newest complete checkpoint.
//   - arcface_torch's: a torch.save'd state dict (backbone.pth), or a training checkpoint whose
//     "state_dict_backbone" entry holds it. It carries no metadata, so the layout is read off the
//     keys and shapes (blocks per stage, width, embedding size).
//
// The metadata, when present, wins over what the keys suggest; a caller's hint wins over both.
// A folded (BatchNorm-free) state dict is not a checkpoint: folding happens in memory at export.
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import * as T from "../torch/index.ts";
import { type Tensor } from "../torch/index.ts";
import { IResNet } from "./iresnet.ts";
import { MobileFaceNet } from "./mobilefacenet.ts";
import {
  type Backbone,
  PRESETS,
  PRESET_NAMES,
  backboneCost,
  buildBackbone,
  resolvePreset,
} from "./registry.ts";

/** Everything needed to rebuild a backbone before its weights are loaded. */
export interface BackboneDescriptor {
  /** A preset name ("r50", "mbf") or four iResNet block counts ("[3,4,14,3]"). */
  backbone: string;
  /** Channel multiplier (1 = arcface_torch's sizes). */
  width: number;
  /** Embedding size. */
  numFeatures: number;
}

/** The safetensors metadata keys of a backbone checkpoint. */
export const CHECKPOINT_KEYS = {
  backbone: "mfr.backbone",
  width: "mfr.width",
  numFeatures: "mfr.num_features",
} as const;

/** The backbone file inside a trainer checkpoint folder (src/train/checkpoint.ts). */
const TRAINER_BACKBONE_FILE = "backbone.safetensors";

export interface LoadedBackbone {
  /** The backbone with the checkpoint's weights, in eval mode. */
  model: Backbone;
  descriptor: BackboneDescriptor;
  /** The file's metadata (safetensors only; empty for .pth). */
  metadata: Record<string, string>;
  format: "safetensors" | "pth";
}

/** The descriptor of a built backbone (what saveBackboneCheckpoint records). */
export function describeBackbone(model: Backbone): BackboneDescriptor {
  const o = model.options;
  const blocks = o.blocks.join(",");
  const family = model instanceof IResNet ? "iresnet" : "mobilefacenet";
  const preset = PRESET_NAMES.find((n) => {
    const p = PRESETS[n];
    if (p.family !== family || p.blocks.join(",") !== blocks) return false;
    return !(model instanceof MobileFaceNet) || ("scale" in p && p.scale === model.options.scale);
  });
  if (preset === undefined && model instanceof MobileFaceNet)
    throw new Error(`describeBackbone: this MobileFaceNet matches no preset (blocks ${blocks})`);
  return { backbone: preset ?? `[${blocks}]`, width: o.width ?? 1, numFeatures: o.numFeatures ?? 512 };
}

/**
 * Writes a backbone checkpoint: its state dict as safetensors, with the descriptor (and any extra
 * string metadata, e.g. the training step) in the header. Atomic, with mfr's checksum.
 */
export function saveBackboneCheckpoint(
  file: string,
  model: Backbone,
  extraMetadata: Record<string, string> = {},
): BackboneDescriptor {
  const d = describeBackbone(model);
  T.saveSafetensors(file, model.stateDict(), {
    ...extraMetadata,
    [CHECKPOINT_KEYS.backbone]: d.backbone,
    [CHECKPOINT_KEYS.width]: String(d.width),
    [CHECKPOINT_KEYS.numFeatures]: String(d.numFeatures),
  });
  return d;
}

/**
 * Loads a backbone checkpoint (mfr's .safetensors, a trainer checkpoint folder, arcface_torch's
 * .pth) into a freshly built backbone in eval mode. Keys must match exactly; errors name the file.
 */
export function loadBackboneCheckpoint(
  given: string,
  hint: Partial<BackboneDescriptor> = {},
): LoadedBackbone {
  const path = newestIfRunDir(given);
  const file = isDirectory(path) ? join(path, TRAINER_BACKBONE_FILE) : path;
  if (!existsSync(file)) throw new Error(`${file}: no such checkpoint`);
  verifyTrainerManifest(file, isDirectory(path));
  const format = /\.safetensors$/i.test(file) ? "safetensors" : "pth";
  if (format === "pth") checkPthMagic(file);
  let tensors: Map<string, Tensor>;
  let metadata: Record<string, string> = {};
  if (format === "safetensors") {
    const st = T.loadSafetensors(file);
    tensors = onlyModelTensors(st.tensors);
    metadata = st.metadata;
  } else {
    tensors = pthBackboneStateDict(file);
  }
  try {
    const fromKeys = inferDescriptor(tensors);
    const fromMeta = descriptorFromMetadata(metadata, file);
    const descriptor: BackboneDescriptor = {
      backbone: hint.backbone ?? fromMeta.backbone ?? fromKeys.backbone,
      width: hint.width ?? fromMeta.width ?? fromKeys.width,
      numFeatures: hint.numFeatures ?? fromMeta.numFeatures ?? fromKeys.numFeatures,
    };
    const how = fromMeta.backbone !== undefined ? "from its metadata" : "read off its keys and shapes";
    const doesNotFit = `${file}: does not fit ${descriptor.backbone} at width ${descriptor.width} with ${descriptor.numFeatures}-d embeddings (${how})`;
    // Metadata is the file's claim: "r1200" on an r50's weights would build GBs of parameters
    // before loadStateDict noticed. A layout with more parameters than the file has values cannot fit.
    let params: number;
    try {
      params = backboneCost(descriptor.backbone, {
        width: descriptor.width,
        numFeatures: descriptor.numFeatures,
      }).params;
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`, { cause: e });
    }
    const values = [...tensors.values()].reduce((a, t) => a + t.numel, 0);
    if (params > values)
      throw new Error(`${doesNotFit}: that layout has ${params} parameters, the file holds ${values} values`);
    let model: Backbone;
    try {
      model = buildBackbone(descriptor.backbone, {
        width: descriptor.width,
        numFeatures: descriptor.numFeatures,
      });
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`, { cause: e });
    }
    try {
      model.loadStateDict(tensors);
    } catch (e) {
      model.dispose();
      throw new Error(`${doesNotFit}: ${(e as Error).message}`, { cause: e });
    }
    return { model: model.eval(), descriptor, metadata, format };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/**
 * A trainer checkpoint's backbone file is checked against the folder's manifest.json (which
 * covers the header too, unlike the safetensors data checksum). A folder without a manifest is a
 * checkpoint whose writing never finished.
 */
/** The trainer's complete checkpoints (step folders with a manifest) in a run folder, oldest first. */
export function listCheckpoints(runDir: string): { step: number; dir: string }[] {
  const root = join(runDir, "checkpoints");
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => /^step-\d+$/.test(d) && existsSync(join(root, d, "manifest.json")))
    .map((d) => ({ step: Number(d.slice(5)), dir: join(root, d) }))
    .sort((a, b) => a.step - b.step);
}

/** A run folder (it has checkpoints/) means its newest complete checkpoint; anything else itself. */
export function newestIfRunDir(path: string): string {
  if (!isDirectory(path) || !existsSync(join(path, "checkpoints"))) return path;
  const newest = listCheckpoints(path).at(-1);
  if (!newest) throw new Error(`${path}: a run folder without a complete checkpoint`);
  return newest.dir;
}

function verifyTrainerManifest(file: string, folder: boolean): void {
  const dir = dirname(file);
  const manifest = join(dir, "manifest.json");
  if (!existsSync(manifest)) {
    if (folder)
      throw new Error(`${dir}: incomplete checkpoint (no manifest.json: its writing never finished)`);
    return;
  }
  if (basename(file) !== TRAINER_BACKBONE_FILE) return;
  const m = T.readJsonFile(manifest) as { files?: Record<string, string> } | null;
  if (typeof m?.files !== "object" || m.files === null)
    throw new Error(`${manifest}: has no "files" map of checksums; the manifest is corrupt`);
  T.verifyChecksums(dir, m.files, [TRAINER_BACKBONE_FILE]);
}

/** What a model file that is neither safetensors nor a zip torch.save is, in the error. */
function checkPthMagic(file: string): void {
  const head = Buffer.alloc(2);
  const fd = openSync(file, "r");
  try {
    readSync(fd, head, 0, 2, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString("latin1") === "PK") return;
  // torch.save's pre-1.6 format starts with a pickle (protocol opcode 0x80).
  if (head[0] === 0x80) return;
  throw new Error(
    `${file}: not a model checkpoint (expected mfr's .safetensors, a trainer checkpoint folder, a torch.save .pth or an .onnx)`,
  );
}

function isDirectory(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/**
 * A training checkpoint keeps the backbone under "model.<key>" beside optimizer state: keep those
 * keys, without the prefix, and free the rest. A plain state dict is returned as it is.
 */
function onlyModelTensors(all: Map<string, Tensor>): Map<string, Tensor> {
  if (all.has("conv1.weight") || all.has("layers.0.layers.0.weight")) return all;
  const prefix = "model.";
  if (![...all.keys()].some((k) => k.startsWith(prefix))) return all;
  const out = new Map<string, Tensor>();
  for (const [k, t] of all) {
    if (k.startsWith(prefix)) out.set(k.slice(prefix.length), t);
    else t.dispose();
  }
  return out;
}

/** The backbone state dict of a .pth: a plain state dict or arcface_torch's "state_dict_backbone". */
function pthBackboneStateDict(file: string): Map<string, Tensor> {
  const obj = T.loadPthObject(file);
  const dict =
    obj instanceof Map && obj.get("state_dict_backbone") instanceof Map
      ? obj.get("state_dict_backbone")
      : obj;
  if (!(dict instanceof Map))
    throw new Error(`${file}: not a state dict (the top-level object is not a dict)`);
  const out = new Map<string, Tensor>();
  for (const [k, v] of dict) if (typeof k === "string" && v instanceof T.Tensor) out.set(k, v);
  if (out.size === 0) throw new Error(`${file}: holds no tensors`);
  // DistributedDataParallel's wrapper prefixes every key with "module.".
  if ([...out.keys()].every((k) => k.startsWith("module.")))
    return new Map([...out].map(([k, v]) => [k.slice("module.".length), v]));
  return out;
}

function descriptorFromMetadata(meta: Record<string, string>, file: string): Partial<BackboneDescriptor> {
  const out: Partial<BackboneDescriptor> = {};
  const b = meta[CHECKPOINT_KEYS.backbone];
  if (b !== undefined) {
    resolvePreset(b); // refuses unknown names now, with the list of presets
    out.backbone = b;
  }
  for (const key of ["width", "numFeatures"] as const) {
    const raw = meta[CHECKPOINT_KEYS[key]];
    if (raw === undefined) continue;
    const v = Number(raw);
    if (!(v > 0) || (key === "numFeatures" && !Number.isInteger(v)))
      throw new Error(`${file}: metadata ${CHECKPOINT_KEYS[key]}='${raw}' is not a positive number`);
    out[key] = v;
  }
  return out;
}

/** Indices i of keys "<prefix>.<i>.…" (the length of a Sequential in a state dict). */
function countChildren(keys: readonly string[], prefix: string): number {
  const seen = new Set<number>();
  for (const k of keys) {
    if (!k.startsWith(`${prefix}.`)) continue;
    const i = Number(k.slice(prefix.length + 1).split(".")[0]);
    if (Number.isInteger(i)) seen.add(i);
  }
  return seen.size;
}

/** The layout a state dict implies, from arcface_torch's key names and the tensor shapes. */
export function inferDescriptor(sd: ReadonlyMap<string, Tensor>): BackboneDescriptor {
  const keys = [...sd.keys()];
  const shape = (k: string): readonly number[] => {
    const t = sd.get(k);
    if (t === undefined) throw new Error(`state dict has no '${k}'`);
    return t.shape;
  };
  if (sd.has("conv1.weight") && sd.has("layer1.0.conv1.weight")) {
    const blocks = [1, 2, 3, 4].map((s) => countChildren(keys, `layer${s}`));
    const joined = blocks.join(",");
    const preset = PRESET_NAMES.find(
      (n) => PRESETS[n].family === "iresnet" && PRESETS[n].blocks.join(",") === joined,
    );
    return {
      backbone: preset ?? `[${joined}]`,
      width: shape("conv1.weight")[0]! / 64,
      numFeatures: shape("fc.weight")[0]!,
    };
  }
  if (sd.has("layers.0.layers.0.weight") && sd.has("conv_sep.layers.0.weight")) {
    // layers.1 is one ConvBlock when the first group has a single block, else a Residual.
    const b0 = sd.has("layers.1.layers.0.weight") ? 1 : countChildren(keys, "layers.1.layers");
    const blocks = [b0, ...[3, 5, 7].map((i) => countChildren(keys, `layers.${i}.layers`))].join(",");
    const preset = PRESET_NAMES.find(
      (n) => PRESETS[n].family === "mobilefacenet" && PRESETS[n].blocks.join(",") === blocks,
    );
    const p = preset === undefined ? undefined : PRESETS[preset];
    if (p === undefined || !("scale" in p))
      throw new Error(
        `a MobileFaceNet state dict with blocks (${blocks}) matches no preset (mbf, mbf_large)`,
      );
    return {
      backbone: preset!,
      width: shape("layers.0.layers.0.weight")[0]! / (64 * p.scale),
      numFeatures: shape("features.layers.2.weight")[0]!,
    };
  }
  throw new Error(
    "not a known backbone state dict (expected arcface_torch's iResNet keys conv1/layer1… or MobileFaceNet's layers/conv_sep…)",
  );
}
