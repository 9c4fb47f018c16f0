// Opens whatever a user points at: a folder holding train.rec, a .rec file, a list file, or an
// image folder in <identity>/<image> layout.
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import type { Dataset } from "./dataset.ts";
import { openFolderDataset, openListDataset } from "./folder-dataset.ts";
import { RecDataset } from "./rec-dataset.ts";

export function openDataset(p: string): Dataset {
  if (!existsSync(p)) throw new Error(`${p}: no such file or folder`);
  if (statSync(p).isDirectory()) {
    return existsSync(path.join(p, "train.rec")) ? new RecDataset(p) : openFolderDataset(p);
  }
  if (p.endsWith(".rec")) return new RecDataset(p);
  if (/\.(lst|txt|list)$/i.test(p)) return openListDataset(p);
  throw new Error(`${p}: not a dataset (expected a folder, a .rec file or a .lst/.txt list)`);
}
