// `mfr distill features --teacher T --data D --out STORE`: the teacher's features of every record
// (and of its flipped and masked variants) for `distill.mode: "features"` (docs/distillation.md).
// One process, or one rank of K under `mfr launch` (each writes its part; rerun to resume).
import type { Command } from "commander";
import { isGlobalRankZero } from "../../distributed/index.ts";
import { openOnnxTeacher } from "../../eval/index.ts";
import { JPEG_MODES, type JpegMode } from "../../data/index.ts";
import { writeFeatureStore } from "../../train/index.ts";
import { integer } from "../flags.ts";

interface FeatureFlags {
  teacher: string;
  data: string;
  out: string;
  maskVariants: number;
  maskSeed: number;
  flip: boolean;
  batchSize: number;
  workers: number;
  imageSize: number;
  jpegMode: string;
  device: string;
}

export function registerDistill(program: Command): void {
  const distill = program.command("distill").description("feature distillation: teacher feature stores");
  distill
    .command("features")
    .description("write a teacher's normalised fp16 features of every record (and its flip/mask variants)")
    .requiredOption("--teacher <path>", "mfr run folder or checkpoint, arcface_torch .pth, or .onnx (CPU)")
    .requiredOption("--data <path>", "the training dataset (.rec, <identity>/<image> folder, list file)")
    .requiredOption("--out <dir>", "the store folder (an unfinished one is resumed)")
    .option(
      "--mask-variants <k>",
      "fixed masks per record (0: for runs with data.maskProb 0)",
      integer("--mask-variants", 0, 255),
      2,
    )
    .option("--mask-seed <n>", "seed of the per-record masks", integer("--mask-seed", 0), 0)
    .option("--no-flip", "no flipped rows (for runs with data.flipProb 0; half the size)")
    .option("--batch-size <n>", "records per teacher forward", integer("--batch-size", 1), 64)
    .option("--workers <n>", "decode threads", integer("--workers", 1), 2)
    .option("--image-size <n>", "as the run's data.imageSize", integer("--image-size", 1), 112)
    .option("--jpeg-mode <mode>", `as the run's data.jpegMode (${JPEG_MODES.join(", ")})`, "fast-idct")
    .option("--device <d>", "where a libtorch teacher runs: auto, cpu, cuda", "auto")
    .action(async (f: FeatureFlags) => {
      if (!JPEG_MODES.includes(f.jpegMode as JpegMode))
        throw new Error(`--jpeg-mode: expected one of ${JPEG_MODES.join(", ")}, got '${f.jpegMode}'`);
      if (!["auto", "cpu", "cuda"].includes(f.device))
        throw new Error(`--device: expected auto, cpu or cuda, got '${f.device}'`);
      const rank0 = isGlobalRankZero();
      let last = 0;
      const r = await writeFeatureStore({
        teacher: f.teacher,
        data: f.data,
        out: f.out,
        maskVariants: f.maskVariants,
        maskSeed: f.maskSeed,
        flips: f.flip,
        batchSize: f.batchSize,
        workers: f.workers,
        imageSize: f.imageSize,
        jpegMode: f.jpegMode as JpegMode,
        device: f.device as "auto" | "cpu" | "cuda",
        onnx: openOnnxTeacher,
        onProgress: (done, total) => {
          if (!rank0 || (done - last < total / 20 && done !== total)) return;
          last = done;
          console.error(`distill features: ${done}/${total} records (rank 0)`);
        },
      });
      if (r.resumedFrom > 0) console.error(`resumed after ${r.resumedFrom} records already written`);
      for (const b of r.bad) console.error(`warning: ${b}: unreadable, its rows are zero`);
      if (r.manifest) {
        const m = r.manifest;
        console.error(
          `wrote ${f.out}: ${m.dataset.length} records × ${(m.augment.flips ? 2 : 1) * (1 + (m.augment.recordMasks?.variants ?? 0))} ` +
            `variants × ${m.teacher.embeddingSize}-d fp16 in ${m.parts.length} part(s)`,
        );
      }
    });
}
