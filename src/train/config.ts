// Training configuration: one zod schema, typed; `defineConfig` for configs/ files and presets
// derived by spreading; `--set key=value` overrides with errors that name the key.
import { z } from "zod";
import { JPEG_MODES } from "../data/index.ts";
import { DEFAULT_BUCKET_CAP_MB, DEFAULT_TIMEOUT_S, GLOO_NO_BF16 } from "../distributed/index.ts";
import { type BackboneName } from "../models/index.ts";
import { OPTIMIZERS } from "../optim/index.ts";
import { AMP_MODES, cudaAvailable } from "../torch/index.ts";
import { DEFAULT_LOSS_SCALE } from "./precision.ts";
import { DEFAULT_FPRS } from "../eval/pairs.ts";
import { parseFpr } from "../eval/fpr.ts";

const margin = z.object({
  s: z.number().positive(),
  m1: z.number().optional(),
  m2: z.number().optional(),
  m3: z.number().optional(),
});

/** What `verify` evaluates (src/train/verify.ts; docs/training.md, "Verification while training"). */
const verifySet = z.union([
  z
    .object({
      /** arcface_torch's verification set (lfw.bin, cfp_fp.bin, agedb_30.bin): 10-fold accuracy. */
      bin: z.string().min(1),
      /** Its name in the console and metrics.jsonl (default: the file name without .bin). */
      name: z.string().min(1).optional(),
    })
    .strict(),
  z
    .object({
      /**
       * Held-out identities (a folder, .rec or list), evaluated with the MFR protocol: TPR@FPR
       * over every pair, masked probes against the unmasked gallery and by subset.
       */
      data: z.string().min(1),
      name: z.string().min(1).optional(),
      /** Fraction of the images that get a synthetic mask (the probes). */
      maskProb: z.number().gt(0).lt(1).default(0.5),
      fpr: z
        .array(
          z.string().superRefine((s, ctx) => {
            try {
              parseFpr(s);
            } catch (e) {
              ctx.addIssue({ code: "custom", message: (e as Error).message });
            }
          }),
        )
        .min(1)
        .default([...DEFAULT_FPRS]),
      /** Seeds which images are masked, and how. */
      seed: z.number().int().default(0),
    })
    .strict(),
]);

// A section whose every key has a default may be left out (`.prefault({})`), as if written `{}`.
export const TrainConfigSchema = z
  .object({
    /** Where checkpoints, metrics.jsonl and run.json go. */
    runDir: z.string().min(1),
    /**
     * Where each rank trains: "cuda" (one GPU per rank, by LOCAL_RANK; NCCL between ranks), "cpu"
     * (Gloo), or "auto" (CUDA when the addon was built with it and a GPU is visible).
     */
    device: z.enum(["auto", "cpu", "cuda"]).default("auto"),
    data: z
      .object({
        /** A .rec, a folder of <identity>/<n>.jpg, or a list file. */
        path: z.string().min(1),
        /** Images per rank per step. */
        batchSize: z.number().int().positive(),
        workers: z.number().int().positive().default(2),
        imageSize: z.number().int().positive().default(112),
        maskProb: z.number().min(0).max(1).default(0.35),
        flipProb: z.number().min(0).max(1).default(0.5),
        /** libjpeg-turbo's IDCT and chroma upsampling (docs/data.md): accurate = PIL's pixels. */
        jpegMode: z.enum(JPEG_MODES).default("fast-idct"),
        /** Largest fraction of unreadable samples skipped (with a warning) before the run stops. */
        maxBadFraction: z.number().min(0).max(1).default(0.001),
      })
      .strict(),
    model: z
      .object({
        /** A preset (r50, r200, mbf, …) or four block counts; checked when the model is built. */
        backbone: (z.string() as z.ZodType<BackboneName, BackboneName>).default("r50"),
        width: z.number().positive().default(1),
        embeddingSize: z.number().int().positive().default(512),
      })
      .strict()
      .prefault({}),
    head: z
      .object({
        /** Number of identities; 0 = take it from the dataset. */
        numClasses: z.number().int().nonnegative().default(0),
        sampleRate: z.number().gt(0).max(1).default(1),
        margin: z.union([z.enum(["cosface", "arcface"]), margin]).default("cosface"),
        seed: z.number().int().default(0),
        /**
         * The fused chunked head (docs/head.md): the same step in O(batch × chunk) working memory,
         * its weight gradient fused into SGD's update. "auto": whenever the optimizer is SGD.
         */
        fused: z.union([z.literal("auto"), z.boolean()]).default("auto"),
        /** Classes per block of the fused head (default 4096). */
        chunk: z.number().int().positive().optional(),
      })
      .strict()
      .prefault({}),
    optim: z
      .object({
        /** sgd (arcface_torch), adamw, or lars (the challenge's large batches; with ZeRO too). */
        name: z.enum(OPTIMIZERS).default("sgd"),
        /** Base rate of the backbone and head (SGD, momentum 0.9, as arcface_torch). */
        lr: z.number().positive().default(0.1),
        /**
         * Linear scaling: `lr` is the rate for a global batch of this many images, and the run uses
         * lr × (data.batchSize × world size) / referenceBatch. Unset: `lr` as given.
         */
        referenceBatch: z.number().int().positive().optional(),
        momentum: z.number().min(0).max(1).default(0.9),
        weightDecay: z.number().nonnegative().default(5e-4),
        /** Linear warm-up from lr/warmupSteps to lr, before any decay. */
        warmupSteps: z.number().int().nonnegative().default(0),
        /** After warm-up: poly (power 2), cosine or constant to `steps`; or × gamma at each milestone. */
        decay: z
          .union([
            z.enum(["poly", "cosine", "constant"]),
            z
              .object({
                name: z.literal("multistep"),
                /** Steps (as `steps` and `warmupSteps` count) at which the rate is multiplied by gamma. */
                milestones: z.array(z.number().int().positive()).min(1),
                gamma: z.number().gt(0).lt(1).default(0.1),
              })
              .strict(),
          ])
          .default("poly"),
        /** Backbone gradient norm clip (arcface_torch: 5); 0 = off. */
        clipNorm: z.number().nonnegative().default(5),
      })
      .strict()
      .prefault({}),
    dist: z
      .object({
        compress: z.enum(AMP_MODES).default("none"),
        bucketCapMB: z.number().positive().default(DEFAULT_BUCKET_CAP_MB),
        timeoutS: z.number().positive().default(DEFAULT_TIMEOUT_S),
      })
      .strict()
      .prefault({}),
    /** Peak-memory techniques: each one switch, all composable, none changing the maths. */
    train: z
      .object({
        /** Each rank's batch runs as this many micro-batches; gradients sync once per step. */
        microBatches: z.number().int().positive().default(1),
        /** Activation checkpointing of the backbone: per stage or every k blocks. */
        checkpoint: z
          .union([
            z.literal("none"),
            z.literal("stage"),
            z.object({ every: z.number().int().positive() }).strict(),
          ])
          .default("none"),
        /** Autocast: bf16 on CPU; fp16 (with loss scaling) or bf16 on CUDA. */
        amp: z.enum(AMP_MODES).default("none"),
        /** Precision of the head's logits and softmax under AMP. */
        headPrecision: z.enum(["fp32", "amp"]).default("fp32"),
        /** Dynamic loss scaling ("auto": with fp16 only). */
        lossScale: z
          .object({
            enabled: z.enum(["auto", "on", "off"]).default("auto"),
            init: z.number().positive().default(DEFAULT_LOSS_SCALE.init),
            growthFactor: z.number().gt(1).default(DEFAULT_LOSS_SCALE.growthFactor),
            backoffFactor: z.number().gt(0).lt(1).default(DEFAULT_LOSS_SCALE.backoffFactor),
            growthInterval: z.number().int().positive().default(DEFAULT_LOSS_SCALE.growthInterval),
          })
          .strict()
          .prefault({}),
        /** ZeRO for the backbone: 1 shards the optimizer state, 2 also the gradients. */
        zero: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(0),
      })
      .strict()
      .prefault({}),
    /**
     * Feature distillation from a frozen teacher (docs/distillation.md): loss = CE + λ·mean
     * ‖t/‖t‖ − s/‖s‖‖². Absent: no teacher.
     */
    distill: z
      .object({
        /** An mfr run folder or checkpoint, an arcface_torch .pth backbone, or an .onnx model. */
        teacher: z.string().min(1),
        /** λ, the weight of the distillation term (the challenge entry's 9). */
        lambda: z.number().positive().default(9),
        /** "online": each rank runs the teacher on its batch; "features": read a feature store. */
        mode: z.enum(["online", "features"]).default("online"),
        /** mode "features": the folder `mfr distill features` wrote for this dataset and teacher. */
        store: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    steps: z.number().int().positive(),
    seed: z.number().int().default(0),
    logEvery: z.number().int().positive().default(1),
    checkpointEvery: z.number().int().nonnegative().default(0),
    keepCheckpoints: z.number().int().positive().default(3),
    /**
     * Verification of rank 0's backbone every `every` steps, at step 0 of a fresh run and at the
     * end; absent or null (`--set verify=null`): none.
     */
    verify: z
      .object({
        every: z.number().int().positive(),
        sets: z.array(verifySet).min(1),
        /** Images per forward. */
        batchSize: z.number().int().positive().default(64),
      })
      .strict()
      .nullish(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = (c.verify?.sets ?? []).map(verifySetName);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i)
        ctx.addIssue({
          code: "custom",
          path: ["verify", "sets", i],
          message: `two sets are named '${n}': give one a distinct \`name\``,
        });
    });
    if (c.data.batchSize % c.train.microBatches !== 0) {
      ctx.addIssue({
        code: "custom",
        path: ["train", "microBatches"],
        message: `${c.train.microBatches} micro-batches do not divide data.batchSize ${c.data.batchSize}`,
      });
    }
    if (typeof c.optim.decay === "object") {
      const ms = c.optim.decay.milestones;
      const bad = (message: string): void =>
        ctx.addIssue({ code: "custom", path: ["optim", "decay", "milestones"], message });
      if (ms.some((m, i) => i > 0 && m <= ms[i - 1]!)) bad(`[${ms.join(", ")}] must increase`);
      else if (ms[0]! <= c.optim.warmupSteps)
        bad(
          `${ms[0]} falls in the warm-up (optim.warmupSteps ${c.optim.warmupSteps}); a milestone comes after it`,
        );
      else if (ms.at(-1)! >= c.steps) bad(`${ms.at(-1)} is not before the run's end (steps ${c.steps})`);
    }
    if (c.distill?.mode === "features" && c.distill.store === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["distill", "store"],
        message:
          "distill.mode 'features' reads the teacher's features from a store: set distill.store (mfr distill features writes one)",
      });
    }
    if (c.distill?.mode === "online" && c.distill.store !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["distill", "store"],
        message:
          "distill.mode 'online' runs the teacher and reads no store: remove distill.store or set distill.mode 'features'",
      });
    }
    if (c.head.fused === true && c.optim.name !== "sgd") {
      ctx.addIssue({
        code: "custom",
        path: ["head", "fused"],
        message: `the fused head updates its shard with SGD inside its gradient pass; optim.name is '${c.optim.name}'`,
      });
    }
    if (c.head.chunk !== undefined && !headIsFused(c)) {
      ctx.addIssue({
        code: "custom",
        path: ["head", "chunk"],
        message: "applies to the fused head only, which this config does not use (head.fused, optim.name)",
      });
    }
    // Where the run lands on Gloo (the CPU); on CUDA, NCCL carries bf16.
    if (c.dist.compress === "bf16" && (c.device === "cpu" || (c.device === "auto" && !cudaAvailable()))) {
      ctx.addIssue({
        code: "custom",
        path: ["dist", "compress"],
        message: GLOO_NO_BF16,
      });
    }
  });

/** Whether the run uses the fused chunked head. */
export function headIsFused(c: { head: { fused: "auto" | boolean }; optim: { name: string } }): boolean {
  return c.head.fused === true || (c.head.fused === "auto" && c.optim.name === "sgd");
}

/** A config as written (defaults may be left out). */
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;
/** A validated config with every default filled in. */
export type TrainConfig = z.output<typeof TrainConfigSchema>;

export type VerifySetConfig = NonNullable<TrainConfig["verify"]>["sets"][number];

/** A set's name in the console and metrics.jsonl: `name`, else its file or folder name. */
export function verifySetName(s: VerifySetConfig): string {
  if (s.name) return s.name;
  const p = ("bin" in s ? s.bin : s.data).replace(/[\\/]+$/, "");
  return (p.split(/[\\/]/).at(-1) ?? p).replace(/\.bin$/i, "");
}

/** For configs/*.ts: checks the shape at type level; validation happens when it is loaded. */
export function defineConfig(c: TrainConfigInput): TrainConfigInput {
  return c;
}

/** Validates a config; the error lists each bad key by its dotted path. */
export function parseConfig(c: unknown, source = "config"): TrainConfig {
  const r = TrainConfigSchema.safeParse(c);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new Error(`${source} is invalid:\n${lines.join("\n")}`);
}

/**
 * Applies `key=value` overrides (dotted keys; values parsed as JSON when they parse, else kept as
 * strings). An unknown key is an error naming it.
 */
export function applyOverrides(c: TrainConfigInput, sets: readonly string[]): TrainConfigInput {
  const out = structuredClone(c) as Record<string, unknown>;
  const shape = TrainConfigSchema.shape as Record<string, unknown>;
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new Error(`--set '${s}': expected key=value`);
    const key = s.slice(0, eq);
    const raw = s.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a bare string
    }
    const parts = key.split(".");
    let node = out;
    let schema: unknown = shape;
    for (let i = 0; i < parts.length; i++) {
      const k = parts[i]!;
      const known = schemaKeys(schema);
      if (known && !known.has(k)) {
        throw new Error(
          `--set ${key}: unknown key '${parts.slice(0, i + 1).join(".")}' (known: ${[...known].join(", ")})`,
        );
      }
      if (i === parts.length - 1) {
        node[k] = value;
      } else {
        if (typeof node[k] !== "object" || node[k] === null) node[k] = {};
        node = node[k] as Record<string, unknown>;
        schema = known ? childShape(schema, k) : undefined;
      }
    }
  }
  return out as TrainConfigInput;
}

function unwrap(s: unknown): unknown {
  let cur = s as { shape?: unknown; def?: { innerType?: unknown } } | undefined;
  while (cur && !cur.shape && cur.def?.innerType) cur = cur.def.innerType as typeof cur;
  return cur;
}
function schemaKeys(s: unknown): Set<string> | undefined {
  const shape = (s as Record<string, unknown> | undefined) ?? undefined;
  return shape ? new Set(Object.keys(shape)) : undefined;
}
function childShape(shape: unknown, k: string): unknown {
  const child = unwrap((shape as Record<string, unknown>)[k]) as { shape?: unknown } | undefined;
  return child?.shape;
}

/** Loads a config file (a module whose default export is a config), applies overrides, validates. */
export async function loadConfigFile(file: string, sets: readonly string[] = []): Promise<TrainConfig> {
  const { pathToFileURL } = await import("node:url");
  const { resolve } = await import("node:path");
  const { existsSync } = await import("node:fs");
  // Named here: Node's own message blames the importing module (this file), not the user's path.
  if (!existsSync(file)) throw new Error(`config ${file}: no such file`);
  const mod = await importUnlessStuck<{ default?: unknown }>(pathToFileURL(resolve(file)).href, file);
  const c = mod.default;
  if (typeof c === "function")
    throw new Error(
      `${file}: the default export is a function; a config module must export the config object itself: ` +
        `export default defineConfig({...})`,
    );
  if (typeof c !== "object" || c === null || Array.isArray(c))
    throw new Error(`${file}: a config module must export default defineConfig({...})`);
  return parseConfig(
    applyOverrides(c as TrainConfigInput, sets),
    sets.length ? `${file} with --set ${sets.join(" ")}` : file,
  );
}

/**
 * import(), rejecting when the module can never finish loading: a top-level await that nothing
 * left in the event loop can settle would otherwise let the process exit, successfully, in silence.
 */
async function importUnlessStuck<M>(url: string, file: string): Promise<M> {
  let onIdle: (() => void) | undefined;
  const stuck = new Promise<never>((_, reject) => {
    onIdle = () =>
      reject(new Error(`${file}: the module never finished loading (a top-level await that never settles)`));
    process.once("beforeExit", onIdle);
  });
  try {
    return await Promise.race([import(url) as Promise<M>, stuck]);
  } finally {
    process.off("beforeExit", onIdle!);
  }
}
