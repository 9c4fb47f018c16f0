// `mfr pack`: an image folder or list file -> an InsightFace RecordIO pack. Image bytes are copied
// as they are (no re-encoding, so no quality loss); identities keep their order, numbered 0..C-1.
import { readFileSync } from "node:fs";
import type { Dataset } from "./dataset.ts";
import { sniffImage } from "./image-size.ts";
import { openDataset } from "./open.ts";
import { type IdentityImages, writeRecDataset } from "./rec-dataset.ts";

export async function packDataset(
  source: string | Dataset,
  outDir: string,
  o: { onImage?: (done: number, total: number) => void } = {},
): Promise<{ images: number; identities: number }> {
  const ds = typeof source === "string" ? openDataset(source) : source;
  try {
    if (ds.kind === "rec") throw new Error(`${ds.source} is already a RecordIO pack`);
    // Group samples by label, keeping file order within each identity.
    const order = Array.from({ length: ds.length }, (_, i) => i);
    const label = (i: number): number => {
      const l = ds.labelOf(i);
      if (l === undefined) throw new Error(`${ds.describe(i)}: no label`);
      return l;
    };
    order.sort((a, b) => label(a) - label(b) || a - b);
    let done = 0;
    const groups = function* (): Generator<IdentityImages> {
      let i = 0;
      while (i < order.length) {
        const l = label(order[i]!);
        let j = i;
        while (j < order.length && label(order[j]!) === l) j++;
        const members = order.slice(i, j);
        yield {
          images: (function* () {
            for (const m of members) {
              const loc = ds.locate(m);
              yield readFileSync(loc.file);
              o.onImage?.(++done, ds.length);
            }
          })(),
        };
        i = j;
      }
    };
    const first = sniffImage(readFileSync(ds.locate(order[0] ?? 0).file));
    const imageSize: [number, number] = "error" in first ? [112, 112] : [first.height, first.width];
    return await writeRecDataset(outDir, groups(), { imageSize });
  } finally {
    if (typeof source === "string") ds.close();
  }
}
