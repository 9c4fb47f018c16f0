// Shared by the data tests: small synthetic datasets in temporary folders.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { synthesizeDataset } from "../../src/data/synth/write.ts";

export const tmp = (tag = "data"): string => mkdtempSync(path.join(tmpdir(), `mfr-${tag}-`));

/** A tiny InsightFace-layout pack (identities x images) made by `mfr synth`. */
export async function tinyRec(identities = 6, images = 4, seed = 1): Promise<string> {
  const dir = tmp("rec");
  await synthesizeDataset({ out: dir, identities, imagesPerIdentity: images, seed, format: "rec" });
  return dir;
}

export async function tinyFolder(identities = 3, images = 3, seed = 2): Promise<string> {
  const dir = tmp("folder");
  await synthesizeDataset({ out: dir, identities, imagesPerIdentity: images, seed, format: "folder" });
  return dir;
}
