// `mfr synth`: writes a synthetic face dataset (the embedded default data of demos and tests).
import type { Command } from "commander";
import { SingleBar } from "cli-progress";
import { synthesizeDataset } from "../../data/index.ts";
import { integer } from "../flags.ts";

export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description("render synthetic 112x112 aligned faces: identities x images, as a folder or a .rec pack")
    .requiredOption("--out <dir>", "output folder")
    .requiredOption("--identities <n>", "number of identities", integer("--identities", 1))
    .requiredOption("--images-per-identity <n>", "images per identity", integer("--images-per-identity", 1))
    .option("--seed <n>", "random seed", integer("--seed", 0), 0)
    .option("--format <f>", "folder (<id>/<n>.jpg) or rec (train.rec/.idx + property)", "folder")
    .option(
      "--workers <n>",
      "rendering threads, 0 for none (default: up to 4 for 2000+ images)",
      integer("--workers", 0),
    )
    .action(
      async (o: {
        out: string;
        identities: number;
        imagesPerIdentity: number;
        seed: number;
        format: string;
        workers?: number;
      }) => {
        if (o.format !== "folder" && o.format !== "rec")
          throw new Error(`--format must be folder or rec, got ${o.format}`);
        const bar = process.stderr.isTTY
          ? new SingleBar({ format: "synth [{bar}] {value}/{total} {eta}s" })
          : undefined;
        const t0 = performance.now();
        bar?.start(o.identities * o.imagesPerIdentity, 0);
        const r = await synthesizeDataset({
          out: o.out,
          identities: o.identities,
          imagesPerIdentity: o.imagesPerIdentity,
          seed: o.seed,
          format: o.format,
          workers: o.workers,
          onImage: (d) => bar?.update(d),
        });
        bar?.stop();
        const s = (performance.now() - t0) / 1000;
        console.log(
          `${r.images} images of ${r.identities} identities -> ${o.out} (${o.format}, ${s.toFixed(1)} s)`,
        );
      },
    );
}
