// `mfr pack IN OUT`: image folder or list file -> InsightFace RecordIO (train.rec/.idx + property).
import type { Command } from "commander";
import { SingleBar } from "cli-progress";
import { packDataset } from "../../data/index.ts";

export function registerPack(program: Command): void {
  program
    .command("pack")
    .description("pack an image folder (<identity>/<image>) or a list file into train.rec/train.idx/property")
    .argument("<in>", "image folder or .lst/.txt list")
    .argument("<out>", "output folder")
    .action(async (input: string, out: string) => {
      const bar = process.stderr.isTTY
        ? new SingleBar({ format: "pack [{bar}] {value}/{total}" })
        : undefined;
      let started = false;
      const r = await packDataset(input, out, {
        onImage: (d, t) => {
          if (!started) bar?.start(t, 0);
          started = true;
          bar?.update(d);
        },
      });
      bar?.stop();
      console.log(`${r.images} images of ${r.identities} identities -> ${out}`);
    });
}
