// `mfr mask IN OUT`: draws masks on every image of a folder (or on one image), e.g. to build a
// masked verification set. Each image's mask depends only on the seed and its relative path, so
// reruns and partial reruns agree.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { openFolderDataset } from "../folder-dataset.ts";
import { hash32, hashString } from "../rng.ts";
import { maskImage } from "./render.ts";
import type { MaskKind } from "./shapes.ts";
import { type Landmarks5, landmarksFromNumbers } from "./template.ts";

const IMAGE = /\.(jpe?g|png)$/i;

/**
 * Reads "relative/path x1 y1 x2 y2 x3 y3 x4 y4 x5 y5" lines (left eye, right eye, nose, left and
 * right mouth corner, in pixels).
 */
export function readLandmarks(file: string): Map<string, Landmarks5> {
  const out = new Map<string, Landmarks5>();
  readFileSync(file, "utf8")
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith("#")) return;
      const [p, ...nums] = line.split(/\s+/);
      out.set(p as string, landmarksFromNumbers(nums.map(Number), `${file}:${i + 1}`));
    });
  return out;
}

function listImages(root: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(root, rel), { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listImages(root, r));
    else if (IMAGE.test(e.name)) out.push(r);
  }
  return out;
}

export interface MaskFolderOptions {
  seed: number;
  /** Fraction of images masked (default 1); the others are copied unchanged. */
  prob?: number;
  kind?: MaskKind;
  landmarks?: Map<string, Landmarks5>;
  onImage?: (done: number, total: number, file: string) => void;
}

export interface MaskFolderResult {
  images: number;
  masked: number;
  /** Every image written, relative to the output folder, and whether it got a mask. */
  written: Map<string, boolean>;
  /** Images that could not be read or written, with the reason. */
  failed: { file: string; reason: string }[];
}

/** `p` with symbolic links resolved, also where its last components do not exist yet. */
function realPath(p: string): string {
  const abs = path.resolve(p);
  if (existsSync(abs)) return realpathSync(abs);
  const parent = path.dirname(abs);
  return parent === abs ? abs : path.join(realPath(parent), path.basename(abs));
}

/** Refuses an output that is the input or lies inside the input folder: it would overwrite faces. */
function checkOutput(input: string, output: string, single: boolean): void {
  const src = realPath(input);
  const dst = realPath(output);
  const inside = !single && (dst + path.sep).startsWith(src + path.sep);
  if (dst === src || inside)
    throw new Error(
      `mask: output ${output} ${dst === src ? "is" : "is inside"} the input ${input}; ` +
        "masked images would overwrite or mix with the originals: choose another output",
    );
}

export async function maskFolder(
  input: string,
  output: string,
  o: MaskFolderOptions,
): Promise<MaskFolderResult> {
  const single = statSync(input).isFile();
  checkOutput(input, output, single);
  const files = single ? [path.basename(input)] : listImages(input);
  const inRoot = single ? path.dirname(input) : input;
  const res: MaskFolderResult = { images: files.length, masked: 0, written: new Map(), failed: [] };
  let done = 0;
  for (const rel of files) {
    const src = path.join(inRoot, rel);
    const dst = single ? output : path.join(output, rel);
    try {
      const seed = hash32(o.seed, hashString(rel));
      const bytes = readFileSync(src);
      mkdirSync(path.dirname(dst), { recursive: true });
      if ((seed % 10000) / 10000 >= (o.prob ?? 1)) {
        writeFileSync(dst, bytes);
        res.written.set(rel, false);
      } else {
        const lm = o.landmarks?.get(rel);
        const { image } = await maskImage(bytes, {
          seed,
          ...(lm ? { landmarks: lm } : {}),
          ...(o.kind ? { kind: o.kind } : {}),
        });
        writeFileSync(dst, image);
        res.masked++;
        res.written.set(rel, true);
      }
    } catch (e) {
      res.failed.push({ file: src, reason: (e as Error).message });
    }
    o.onImage?.(++done, files.length, src);
  }
  return res;
}

/**
 * The mask group of every image of `output` (a <identity>/<image> folder that `maskFolder` just
 * wrote), in the order its dataset lists them (`mfr embed`, `mfr eval --data`): 1 masked, 0 not.
 * That order is the folder dataset's, not the walk's, hence the lookup by relative path.
 */
export function maskGroups(output: string, written: ReadonlyMap<string, boolean>): Uint8Array {
  const ds = openFolderDataset(output);
  const groups = new Uint8Array(ds.length);
  for (let i = 0; i < ds.length; i++) {
    const rel = path.relative(output, ds.file(i)).split(path.sep).join("/");
    const masked = written.get(rel);
    if (masked === undefined)
      throw new Error(
        `mask: ${ds.file(i)} was not written by this run (the output folder held other images): ` +
          "mask groups need an output folder of its own",
      );
    groups[i] = masked ? 1 : 0;
  }
  return groups;
}
