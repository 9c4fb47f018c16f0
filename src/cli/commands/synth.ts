// `mfr synth`: writes a synthetic face dataset (the embedded default data of demos and tests).
import type { Command } from "commander";
import { SingleBar } from "cli-progress";
import { synthesizeDataset } from "../../data/index.ts";

const int = (name: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  return n;
};

export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description("render synthetic 112x112 aligned faces: identities x images, as a folder or a .rec pack")
    .requiredOption("--out <dir>", "output folder")
    .requiredOption("--identities <n>", "number of identities")
    .requiredOption("--images-per-identity <n>", "images per identity")
    .option("--seed <n>", "random seed", "0")
    .option("--format <f>", "folder (<id>/<n>.jpg) or rec (train.rec/.idx + property)", "folder")
    .option("--workers <n>", "rendering threads (default: up to 4 for 2000+ images)")
    .action(
      async (o: {
        out: string;
        identities: string;
        imagesPerIdentity: string;
        seed: string;
        format: string;
      }) => {
        if (o.format !== "folder" && o.format !== "rec")
          throw new Error(`--format must be folder or rec, got ${o.format}`);
        const bar = process.stderr.isTTY
          ? new SingleBar({ format: "synth [{bar}] {value}/{total} {eta}s" })
          : undefined;
        const t0 = performance.now();
        const total = int("identities", o.identities) * int("images-per-identity", o.imagesPerIdentity);
        bar?.start(total, 0);
        const r = await synthesizeDataset({
          out: o.out,
          identities: int("identities", o.identities),
          imagesPerIdentity: int("images-per-identity", o.imagesPerIdentity),
          seed: int("seed", o.seed),
          format: o.format,
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
