// `mfr embed`: embeddings (and labels) of every image of a dataset, in dataset order, as .npy files
// for `mfr eval`. The model is an exported .onnx (onnxruntime-node) or a checkpoint (libtorch).
import type { Command } from "commander";
import { SingleBar } from "cli-progress";
import type { BackboneDescriptor } from "../../models/index.ts";
import { embedToFiles, openEmbedder } from "../../eval/index.ts";
import { integer, numberAbove } from "../flags.ts";

/** --backbone/--width/--features as a loader hint (only the flags given). */
export function backboneHint(f: {
  backbone?: string;
  width?: number;
  features?: number;
}): Partial<BackboneDescriptor> {
  return {
    ...(f.backbone !== undefined ? { backbone: f.backbone } : {}),
    ...(f.width !== undefined ? { width: f.width } : {}),
    ...(f.features !== undefined ? { numFeatures: f.features } : {}),
  };
}

interface EmbedFlags {
  model: string;
  data: string;
  out: string;
  labels?: string;
  flip?: boolean;
  batchSize: number;
  workers: number;
  threads?: number;
  limit?: number;
  backbone?: string;
  width?: number;
  features?: number;
}

export function registerEmbed(program: Command): void {
  program
    .command("embed")
    .description("embed every image of a dataset with a checkpoint (libtorch) or an .onnx (onnxruntime-node)")
    .requiredOption("--model <file>", "checkpoint (.safetensors/.pth) or exported .onnx")
    .requiredOption(
      "--data <path>",
      "dataset (.rec, <identity>/<image> folder, list file), image folder or image",
    )
    .requiredOption("--out <file>", "embeddings .npy, float32 [N, D], in dataset order")
    .option("--labels <file>", "also write identity labels .npy, int64 [N]")
    .option("--flip", "add the embedding of the mirrored image (flip test-time augmentation)")
    .option(
      "--batch-size <n>",
      "images per forward (a fixed-batch .onnx sets its own)",
      integer("--batch-size", 1),
      64,
    )
    .option("--workers <n>", "decode threads", integer("--workers", 1), 2)
    .option("--threads <n>", "onnxruntime intra-op threads (default: one per core)", integer("--threads", 1))
    .option("--limit <n>", "embed only the first n images", integer("--limit", 1))
    .option("--backbone <name>", "backbone preset, when the checkpoint does not say (arcface_torch .pth)")
    .option("--width <w>", "channel multiplier, when the checkpoint does not say", numberAbove("--width", 0))
    .option("--features <n>", "embedding size, when the checkpoint does not say", integer("--features", 1))
    .action(async (f: EmbedFlags) => {
      const embedder = await openEmbedder(f.model, {
        hint: backboneHint(f),
        ...(f.threads !== undefined ? { threads: f.threads } : {}),
      });
      const bar = process.stderr.isTTY
        ? new SingleBar({ format: "embed [{bar}] {value}/{total} images {eta}s" })
        : undefined;
      const t0 = performance.now();
      try {
        const r = await embedToFiles(
          embedder,
          f.data,
          { embeddings: f.out, labels: f.labels },
          {
            batchSize: f.batchSize,
            workers: f.workers,
            flip: !!f.flip,
            limit: f.limit,
            onProgress: (p) => (p.done === 0 ? bar?.start(p.total, 0) : bar?.update(p.done)),
          },
        );
        bar?.stop();
        const s = (performance.now() - t0) / 1000;
        console.log(
          `${r.count} images -> ${f.out} [${r.count}, ${r.dim}]${f.labels ? `, labels -> ${f.labels}` : ""} ` +
            `(${embedder.kind === "onnx" ? "onnxruntime-node" : "libtorch"}${f.flip ? ", flip" : ""}, ${s.toFixed(1)} s, ` +
            `${(r.count / s).toFixed(1)} images/s)`,
        );
      } finally {
        bar?.stop();
        await embedder.close();
      }
    });
}
