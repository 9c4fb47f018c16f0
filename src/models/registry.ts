// Backbones by name. Every preset is data over the two parametric families; nothing is copied.
// arcface_torch's iresnet200 and the challenge's ResNet200 have the same layout (6/26/60/6), so
// one `r200` serves both; `r1200` is the challenge's ResNet1.2K teacher.
import { IResNet, type IResNetOptions, type StageBlocks, iresnetCost } from "./iresnet.ts";
import { MobileFaceNet, type MobileFaceNetOptions, mobileFaceNetCost } from "./mobilefacenet.ts";
import { type CheckpointPolicy } from "./common.ts";

export type Preset =
  | { family: "iresnet"; blocks: StageBlocks; source: string }
  | { family: "mobilefacenet"; blocks: StageBlocks; scale: number; source: string };

const AF = "arcface_torch";
const MFR = "MFR challenge (ICCV 2021), 2nd place";

export const PRESETS = {
  r18: { family: "iresnet", blocks: [2, 2, 2, 2], source: AF },
  r34: { family: "iresnet", blocks: [3, 4, 6, 3], source: AF },
  r50: { family: "iresnet", blocks: [3, 4, 14, 3], source: AF },
  r100: { family: "iresnet", blocks: [3, 13, 30, 3], source: AF },
  r120: { family: "iresnet", blocks: [3, 13, 40, 3], source: MFR },
  r140: { family: "iresnet", blocks: [3, 15, 48, 3], source: MFR },
  r200: { family: "iresnet", blocks: [6, 26, 60, 6], source: `${AF}; ${MFR}` },
  r240: { family: "iresnet", blocks: [3, 25, 88, 3], source: `${MFR} (submitted)` },
  r600: { family: "iresnet", blocks: [3, 70, 220, 3], source: `${MFR} (teacher)` },
  r1200: { family: "iresnet", blocks: [3, 80, 512, 3], source: `${MFR} (ResNet1.2K teacher)` },
  mbf: { family: "mobilefacenet", blocks: [1, 4, 6, 2], scale: 2, source: AF },
  mbf_large: { family: "mobilefacenet", blocks: [2, 8, 12, 4], scale: 4, source: AF },
} as const satisfies Record<string, Preset>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/**
 * A preset name, or a custom iResNet as "[a,b,c,d]" / "a,b,c,d". (`string & {}` keeps the preset
 * names from collapsing into `string`, so editors still offer them.)
 */
export type BackboneName = PresetName | (string & {});
/** A backbone name, or a custom iResNet's blocks per stage. */
export type BackboneSpec = BackboneName | StageBlocks;

export interface BackboneOptions {
  /** Channel multiplier (1/8 for tiny test models). */
  width?: number;
  numFeatures?: number;
  dropout?: number;
  checkpoint?: CheckpointPolicy;
}

export type Backbone = IResNet | MobileFaceNet;

/** Resolves a spec to a preset-like description; custom block lists are iResNets. */
export function resolvePreset(spec: BackboneSpec): Preset {
  if (typeof spec !== "string") return { family: "iresnet", blocks: spec, source: "custom" };
  if (spec in PRESETS) return PRESETS[spec as PresetName];
  const nums = spec
    .replace(/^\[|\]$/g, "")
    .split(/[,/ ]+/)
    .filter(Boolean)
    .map(Number);
  if (nums.length === 4 && nums.every((n) => Number.isInteger(n) && n > 0)) {
    return { family: "iresnet", blocks: nums as unknown as StageBlocks, source: "custom" };
  }
  throw new Error(
    `unknown backbone '${spec}': use one of ${PRESET_NAMES.join(", ")} or four block counts like [3,4,14,3]`,
  );
}

function optionsFor(p: Preset, o: BackboneOptions): IResNetOptions | MobileFaceNetOptions {
  if (p.family === "iresnet") return { blocks: p.blocks, ...o };
  if (o.dropout !== undefined || o.checkpoint !== undefined) {
    throw new Error("MobileFaceNet takes neither dropout nor a checkpoint policy");
  }
  return { blocks: p.blocks, scale: p.scale, width: o.width, numFeatures: o.numFeatures };
}

/** Builds a backbone: `buildBackbone("r50")`, `buildBackbone("mbf", { width: 1/8 })`, `buildBackbone([3,4,14,3])`. */
export function buildBackbone(spec: BackboneSpec, o: BackboneOptions = {}): Backbone {
  const p = resolvePreset(spec);
  const opts = optionsFor(p, o);
  return p.family === "iresnet"
    ? new IResNet(opts as IResNetOptions)
    : new MobileFaceNet(opts as MobileFaceNetOptions);
}

/** Parameter count and multiply-accumulates per 112×112 image, computed from the layout alone. */
export function backboneCost(spec: BackboneSpec, o: BackboneOptions = {}): { params: number; macs: number } {
  const p = resolvePreset(spec);
  const opts = optionsFor(p, o);
  const c =
    p.family === "iresnet"
      ? iresnetCost(opts as IResNetOptions)
      : mobileFaceNetCost(opts as MobileFaceNetOptions);
  return { params: c.params, macs: c.macs };
}

/** Absorbs BatchNorm into neighbouring conv/linear layers wherever that is exact (eval only). */
export function foldBatchNorm(model: Backbone): void {
  if (model.training) throw new Error("foldBatchNorm: put the model in eval mode first (model.eval())");
  model.foldBatchNorm();
}

export interface PresetRow {
  name: PresetName;
  family: Preset["family"];
  blocks: StageBlocks;
  params: number;
  /** Multiply-accumulates per 112×112 image (arcface_torch and ptflops call these FLOPs). */
  macs: number;
  source: string;
}

/** One row per preset, for `mfr models`. */
export function presetTable(o: Pick<BackboneOptions, "width" | "numFeatures"> = {}): PresetRow[] {
  return PRESET_NAMES.map((name) => {
    const p = PRESETS[name];
    return { name, family: p.family, blocks: p.blocks, ...backboneCost(name, o), source: p.source };
  });
}
