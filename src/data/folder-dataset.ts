// Image folders in WebFace260M's layout (root/<identity>/<image>.jpg, identities numbered in
// sorted order) and list files naming images and labels.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { type Dataset, type DatasetKind, type SampleLocator, StringTable } from "./dataset.ts";

const IMAGE_EXT = /\.(jpe?g|png|webp|bmp|tiff?)$/i;

/** Byte-wise order, the same on every machine and locale. */
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

class PathListDataset implements Dataset {
  readonly imageSize = undefined;
  constructor(
    readonly kind: DatasetKind,
    readonly source: string,
    private readonly root: string,
    private readonly paths: StringTable,
    private readonly labels: Int32Array,
    readonly numClasses: number,
    /** Identity names (folder names) when known. */
    readonly identityNames: string[] | undefined,
    readonly numClassesFrom?: string,
  ) {}

  get length(): number {
    return this.paths.length;
  }

  file(i: number): string {
    return path.join(this.root, this.paths.get(i));
  }

  locate(i: number): SampleLocator {
    return { kind: "file", file: this.file(i), label: this.labels[i] as number };
  }

  labelOf(i: number): number {
    return this.labels[i] as number;
  }

  describe(i: number): string {
    return this.file(i);
  }

  close(): void {}
}

export type FolderDataset = PathListDataset;

/**
 * root/<identity>/<image>: identities are the sub-folders holding at least one image, numbered
 * 0.. in sorted (code unit) order; images sorted by name within each.
 */
export function openFolderDataset(root: string): FolderDataset {
  const names: string[] = [];
  const paths = new StringTable();
  const labels: number[] = [];
  const dirs = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort(byCodeUnit);
  for (const dir of dirs) {
    const files = readdirSync(path.join(root, dir))
      .filter((f) => IMAGE_EXT.test(f))
      .sort(byCodeUnit);
    if (files.length === 0) continue;
    const label = names.length;
    names.push(dir);
    for (const f of files) {
      paths.push(`${dir}/${f}`);
      labels.push(label);
    }
  }
  if (paths.length === 0) throw new Error(`${root}: no images found in <identity>/<image> sub-folders`);
  return new PathListDataset("folder", root, root, paths, Int32Array.from(labels), names.length, names);
}

/**
 * A list file, paths relative to the list's folder. Each line is either "path label" or
 * InsightFace/face2rec's tab-separated "flag<TAB>path<TAB>label[<TAB>landmarks...]".
 */
export function openListDataset(listFile: string): FolderDataset {
  const root = path.dirname(listFile);
  const paths = new StringTable();
  const labels: number[] = [];
  const lines = readFileSync(listFile, "utf8").split(/\r?\n/);
  let maxLabel = -1;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const cols = line.includes("\t") ? line.split("\t") : line.split(/\s+/);
    const [p, l] = cols.length >= 3 ? [cols[1], cols[2]] : [cols[0], cols[1]];
    const label = Number(l);
    if (!p || !Number.isInteger(label) || label < 0)
      throw new Error(
        `${listFile}:${i + 1}: expected "path label" or "flag\\tpath\\tlabel", found ${JSON.stringify(raw)}`,
      );
    paths.push(p);
    labels.push(label);
    if (label > maxLabel) maxLabel = label;
  });
  if (paths.length === 0) throw new Error(`${listFile}: the list names no images`);
  // The largest label decides the class count: one line can claim any number of identities.
  const n = maxLabel + 1;
  return new PathListDataset("list", listFile, root, paths, Int32Array.from(labels), n, undefined, listFile);
}
