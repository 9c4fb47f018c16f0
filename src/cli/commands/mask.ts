// `mfr mask IN OUT`: draws synthetic masks on a folder of faces (or one image).
import type { Command } from "commander";
import { MASK_KINDS, type MaskKind, maskFolder, maskGroups, readLandmarks } from "../../data/index.ts";
import * as T from "../../torch/index.ts";

export function registerMask(program: Command): void {
  program
    .command("mask")
    .description("draw synthetic face masks on every image of a folder (e.g. to build a masked test set)")
    .argument("<in>", "image folder (searched recursively) or one image")
    .argument("<out>", "output folder (same layout) or output image")
    .option("--seed <n>", "random seed: the same seed gives the same masks", "0")
    .option("--prob <p>", "fraction of images masked, the rest copied", "1")
    .option("--kind <k>", `only this mask kind (${MASK_KINDS.join(", ")})`)
    .option(
      "--landmarks <file>",
      'faces not aligned to the ArcFace template: lines "relative/path x1 y1 ... x5 y5" (eyes, nose, mouth corners)',
    )
    .option(
      "--groups <file>",
      "also write the mask groups (.npy uint8, 1 masked, 0 not) in dataset order, for mfr eval --groups",
    )
    .action(
      async (
        input: string,
        output: string,
        o: { seed: string; prob: string; kind?: string; landmarks?: string; groups?: string },
      ) => {
        const seed = Number(o.seed);
        const prob = Number(o.prob);
        if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${o.seed}`);
        if (!(prob >= 0 && prob <= 1)) throw new Error(`--prob must be in [0, 1], got ${o.prob}`);
        if (o.kind !== undefined && !MASK_KINDS.includes(o.kind as MaskKind))
          throw new Error(`--kind must be one of ${MASK_KINDS.join(", ")}, got ${o.kind}`);
        const r = await maskFolder(input, output, {
          seed,
          prob,
          ...(o.kind ? { kind: o.kind as MaskKind } : {}),
          ...(o.landmarks ? { landmarks: readLandmarks(o.landmarks) } : {}),
        });
        for (const f of r.failed) console.error(`skipped ${f.file}: ${f.reason}`);
        console.log(
          `${r.masked} of ${r.images} images masked -> ${output}${r.failed.length ? `, ${r.failed.length} failed` : ""}`,
        );
        if (r.failed.length) process.exitCode = 1;
        else if (o.groups !== undefined) {
          const groups = maskGroups(output, r.written);
          T.scope(() => T.saveNpy(o.groups!, T.tensor(Array.from(groups), { dtype: "u8" })));
          console.log(`mask groups of ${groups.length} images -> ${o.groups}`);
        }
      },
    );
}
